"""`kao models list` and `kao models verify`: which model files are present, where, and whether
their sha256 matches the registry."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kao.models import registry
from kao.models.store import FileStatus, ModelStatus, search_dirs, status


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` command group to the `kao` parser."""
    parser = subparsers.add_parser(
        "models",
        help="list and verify model files",
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
    """Print every registered model with the state of each of its files; always exits 0."""
    models = [status(spec) for spec in registry.REGISTRY.values()]
    if args.json:
        document = {
            "search_dirs": [str(path) for path in search_dirs()],
            "models": [_model_json(model) for model in models],
        }
        print(json.dumps(document, indent=2))
    else:
        _print_table(models)
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
