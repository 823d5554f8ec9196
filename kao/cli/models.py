"""`kao models list` and `kao models verify`: which model files are present, where, and whether
their sha256 matches the registry; `kao models download`: put every model file in the cache (or a
folder), from the registry's URLs or from a mirror folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kao.errors import ModelError
from kao.models import registry
from kao.models.store import FileStatus, ModelStatus, cache_dir, fetch, search_dirs, status


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` command group to the `kao` parser."""
    parser = subparsers.add_parser(
        "models",
        help="list, verify and download model files",
        description="List the known models and check their files by sha256.",
    )
    actions = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="every model, its licence and where its files are")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=run_list)

    verify = actions.add_parser(
        "verify", help="re-hash every present file; exit 1 if any is corrupt or missing"
    )
    verify.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: all)")
    verify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    verify.set_defaults(run=run_verify)

    download = actions.add_parser(
        "download",
        help="fetch or copy every model file into the cache (or --to), checked by sha256",
        description="Put a verified copy of every file of the named models (default: all) in "
        "DIR/<model>/<file>: downloaded from the registry's URLs, or copied from a mirror "
        "folder laid out the same way (what KAO_MODELS points at), so that one machine can "
        "prepare another that is offline (point its KAO_MODELS at DIR). Files already there "
        "with the right sha256 are left alone. Exit 1 if any file could not be supplied.",
    )
    download.add_argument("names", nargs="*", metavar="NAME", help="models (default: all)")
    download.add_argument(
        "--to", type=Path, metavar="DIR", help="destination folder (default: the model cache)"
    )
    download.add_argument(
        "--from",
        dest="mirror",
        type=Path,
        metavar="MIRROR_DIR",
        help="copy from this folder instead of downloading (MIRROR_DIR/<model>/<file>)",
    )
    download.set_defaults(run=run_download)


def _file_json(item: FileStatus) -> dict[str, Any]:
    return {
        "name": item.file.name,
        "sha256": item.file.sha256,
        "size": item.file.size,
        "url": item.file.url,
        "present": item.present,
        "verified": item.verified,
        "path": str(item.path) if item.path else None,
        "problem": item.problem,
        "copies": [
            {"path": str(copy.path), "ok": copy.ok, "problem": copy.problem} for copy in item.copies
        ],
    }


def _model_json(model: ModelStatus) -> dict[str, Any]:
    spec = model.spec
    return {
        "name": spec.name,
        "description": spec.description,
        "licence": spec.licence,
        "source": spec.source,
        "ok": model.ok,
        "files": [_file_json(item) for item in model.files],
    }


def _state(item: FileStatus) -> str:
    if item.corrupt:
        return "CORRUPT"
    return "ok" if item.verified else "missing"


def _print_table(models: list[ModelStatus]) -> None:
    print("search folders, in order:")
    for directory in search_dirs():
        print(f"  {directory}{'' if directory.is_dir() else '  (absent)'}")
    for model in models:
        spec = model.spec
        print(f"\n{spec.name}  [{spec.licence}]  {spec.description}")
        width = max(len(item.file.name) for item in model.files)
        for item in model.files:
            where = str(item.path) if item.path else ""
            print(f"  {_state(item):<8} {item.file.name:<{width}}  {where}".rstrip())
            for copy in item.corrupt:
                print(f"  {'':<8} {'':<{width}}  skipped {copy.path}: {copy.problem}")


def run_list(args: argparse.Namespace) -> int:
    """Print every registered model with the state of each of its files, then the recognition
    models `--model` chooses from; always exits 0."""
    from kao.models.runtime import device_report
    from kao.recognition.embedder import model_table

    models = [status(spec) for spec in registry.REGISTRY.values()]
    recognition = model_table()
    runtime = device_report()
    if args.json:
        document = {
            "search_dirs": [str(path) for path in search_dirs()],
            "models": [_model_json(model) for model in models],
            "recognition": recognition,
            "runtime": runtime,
        }
        print(json.dumps(document, indent=2))
        return 0
    _print_table(models)
    print("\nrecognition models (--model in verify, enroll, identify, group, video, embed):")
    for entry in recognition:
        default = ", the default" if entry["default"] else ""
        print(
            f"  {entry['name']:<15} {entry['dimension']}-d, threshold {entry['threshold']}"
            f"{default}; {entry['weights']}"
        )
    device = runtime["device"] or f"none: {runtime['problem']}"
    print(
        f"\ndevice (--device, KAO_DEVICE {runtime['asked'] or '?'}): {device}; onnxruntime "
        f"{runtime['onnxruntime']} offers {', '.join(runtime['providers'])}"
    )
    cpu, threads = runtime["cpu"], runtime["threads"]
    print(
        f"cpu: {cpu['model']} ({', '.join(cpu['flags']) or 'no 8-bit dot products'}); 8-bit "
        f"networks as {runtime['precision']['chosen']} (KAO_PRECISION "
        f"{runtime['precision']['asked']}); threads {threads['threads']} of "
        f"{threads['usable_cores']} cores now"
        f"{' (KAO_THREADS)' if threads['KAO_THREADS'] else ''}"
        f"{', following the idle cores' if threads['adaptive'] else ''}"
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Re-hash every present copy of the named models' files (all models by default); exit 1 if
    any copy is corrupt or any file has no verified copy."""
    specs = [registry.get(name) for name in args.names] or list(registry.REGISTRY.values())
    models = [status(spec, rehash=True) for spec in specs]
    items = [item for model in models for item in model.files]
    corrupt = sum(len(item.corrupt) for item in items)
    missing = sum(not item.verified for item in items)
    verified = sum(item.verified for item in items)
    ok = corrupt == 0 and missing == 0
    if args.json:
        document = {
            "ok": ok,
            "verified": verified,
            "missing": missing,
            "corrupt": corrupt,
            "search_dirs": [str(path) for path in search_dirs()],
            "models": [_model_json(model) for model in models],
        }
        print(json.dumps(document, indent=2))
    else:
        _print_table(models)
        print(f"\n{verified} verified, {missing} missing, {corrupt} corrupt copies")
    if not ok:
        print(
            f"kao: models verify: {missing} file(s) without a verified copy, {corrupt} corrupt "
            "copy(ies); corrupt copies are never used: delete or replace them, and supply missing "
            "files in one of the search folders (or set KAO_MODELS)",
            file=sys.stderr,
        )
    return 0 if ok else 1


def run_download(args: argparse.Namespace) -> int:
    """Fetch every file of the named models (all by default) into `--to` (default: the cache),
    printing one line per file; exit 1 if any file could not be supplied."""
    specs = [registry.get(name) for name in args.names] or list(registry.REGISTRY.values())
    dest = (args.to or cache_dir()).expanduser().absolute()
    if args.mirror is not None and not args.mirror.is_dir():
        raise ModelError(f"--from {args.mirror}: not a folder")
    failed = 0
    for spec in specs:
        for entry in spec.files:
            try:
                action = fetch(spec, entry, dest, args.mirror)
            except ModelError as error:
                failed += 1
                print(f"kao: models download: {error}", file=sys.stderr)
                continue
            print(f"{action:<10} {spec.name}/{entry.name}")
    total = sum(len(spec.files) for spec in specs)
    print(f"\n{total - failed} of {total} files in {dest}")
    return 1 if failed else 0
