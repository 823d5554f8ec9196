"""`kao enroll`, `kao identify` and `kao db ...`: the face database from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from kao.cli.batch import add_device_option, add_model_option, add_threshold_options
from kao.cli.text import counted
from kao.errors import ImageError, KaoError
from kao.gallery.bulk import BulkEnrolment, enroll_results
from kao.gallery.database import FaceDatabase, PoorFaceError
from kao.image import describe, find_images
from kao.recognition import FaceEmbedder
from kao.recognition.embedder import RECOGNITION_MODELS


def _db_options(parser: argparse.ArgumentParser, collection: bool = True) -> None:
    parser.add_argument(
        "--db",
        default=os.environ.get("KAO_DB"),
        metavar="URL",
        help="SQLite file (faces.db, sqlite:///faces.db) or postgresql://... (default: $KAO_DB)",
    )
    if collection:
        parser.add_argument("--collection", required=True, metavar="C", help="collection name")
    parser.add_argument("--json", action="store_true", help="print JSON")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao enroll`, `kao identify` and `kao db` to the `kao` parser."""
    enroll = subparsers.add_parser(
        "enroll",
        help="add a person's photos to a collection",
        description="Enrol the largest face of each photo as PERSON (several photos per "
        "person make recognition more reliable). All photos or none are stored. With "
        "--from-results, enrol the faces that `kao embed --results` recorded instead: each "
        "photo as the person its folder names (one sub-folder per person), photos with exactly "
        "one face only (unless --largest-face), in transactions of 1,000 faces; a rerun skips "
        "the photos already enrolled.",
    )
    _db_options(enroll)
    enroll.add_argument("--person", metavar="ID", help="the person's name or id")
    enroll.add_argument(
        "--from-results",
        type=Path,
        metavar="RESULTS",
        help="enrol the faces of this results file of `kao embed --results` (.jsonl or "
        ".parquet); its model must be the collection's",
    )
    enroll.add_argument(
        "--largest-face",
        action="store_true",
        help="with --from-results: enrol the largest face of photos with several faces (by "
        "default they are skipped)",
    )
    add_model_option(enroll, collection=True)
    enroll.add_argument(
        "--force",
        action="store_true",
        help="enrol faces too small, blurred, dark or turned to enrol by default",
    )
    enroll.add_argument("images", nargs="*", metavar="IMAGE_OR_DIR")
    add_device_option(enroll)
    enroll.set_defaults(run=run_enroll)

    identify = subparsers.add_parser(
        "identify",
        help="who is in a photo, from a collection",
        description="For every face of each photo, the best matching enrolled persons; a face "
        "below the verification threshold (or --threshold, or the distance of --far) is reported "
        "as unknown (person null).",
    )
    _db_options(identify)
    identify.add_argument("images", nargs="+", metavar="IMAGE")
    identify.add_argument("--top", type=int, default=3, metavar="K", help="matches per face")
    add_model_option(identify, collection=True)
    add_threshold_options(identify)
    add_device_option(identify)
    identify.set_defaults(run=run_identify)

    db = subparsers.add_parser("db", help="list, rename, delete, export, import and re-embed")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="collections, or the persons of --collection")
    _db_options(listing, collection=False)
    listing.add_argument("--collection", metavar="C", help="list this collection's persons")
    listing.set_defaults(run=run_list)
    for name, help_text, extra in (
        ("delete-collection", "delete a collection and all its faces", []),
        ("delete-person", "delete a person and all their faces", ["person"]),
        ("delete-face", "delete one face by its id (see `kao db list --faces`)", ["face_id"]),
        ("rename", "rename a person", ["old", "new"]),
        ("export", "write a collection to a JSON Lines file", ["file"]),
        ("import", "add the faces of a JSON Lines file (all or nothing)", ["file"]),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        _db_options(action)
        for argument in extra:
            action.add_argument(argument, type=int if argument == "face_id" else str)
        action.set_defaults(run=run_change, change=name)
    listing.add_argument("--faces", action="store_true", help="with --collection: every face")
    reembed = actions.add_parser(
        "reembed",
        help="re-compute a collection's faces with another model, from their photos",
        description="Embed every face of the collection again with --model, from the photo it "
        "was enrolled from (found at its enrolled box). If a photo cannot be read, nothing "
        "changes unless --drop-unreadable; the faces get new ids.",
    )
    _db_options(reembed)
    reembed.add_argument("--model", required=True, choices=RECOGNITION_MODELS)
    reembed.add_argument(
        "--root", metavar="DIR", help="folder that relative photo paths are relative to"
    )
    reembed.add_argument(
        "--drop-unreadable",
        action="store_true",
        help="delete the faces whose photo cannot be read (default: change nothing)",
    )
    add_device_option(reembed)
    reembed.set_defaults(run=run_reembed)


def _url(args: argparse.Namespace) -> str:
    if not args.db:
        raise KaoError("no database given: use --db URL or set KAO_DB")
    return args.db


def _database(args: argparse.Namespace) -> FaceDatabase:
    """The database of --db, embedding photos with --model, or each collection's own model."""
    return FaceDatabase(_url(args), FaceEmbedder(model=args.model) if args.model else None)


def _emit(args: argparse.Namespace, document: Any, text: str) -> None:
    print(json.dumps(document, indent=2) if args.json else text)


def run_enroll(args: argparse.Namespace) -> int:
    """Enrol the photos as one person, all or nothing; or the faces of --from-results."""
    if args.from_results is not None:
        return _enroll_results(args)
    if not args.person or not args.images:
        raise KaoError("kao enroll needs --person ID and photos (or --from-results RESULTS)")
    paths = find_images(args.images)
    with _database(args) as db:
        try:
            ids = db.enroll(args.collection, args.person, paths, force=args.force)
        except PoorFaceError as error:
            raise KaoError(
                f"{error.source}: {error.problem}; nothing was enrolled (--force enrols it)"
            ) from None
        faces = len(db.faces(args.collection, args.person))
    document = {"collection": args.collection, "person": args.person, "added": ids, "faces": faces}
    _emit(
        args,
        document,
        f"enrolled {counted(len(ids), 'photo')} of {args.person} in {args.collection} "
        f"({counted(faces, 'face')} in all)",
    )
    return 0


def _enroll_results(args: argparse.Namespace) -> int:
    """`kao enroll --from-results`: see `kao.gallery.bulk`; exit 0 even when photos were
    skipped (they are counted by reason)."""
    if args.person or args.images or args.model:
        raise KaoError(
            "--from-results takes the persons from the photos' folders and the model from the "
            "results: give no --person, --model or photos with it"
        )
    if args.force:
        raise KaoError("--force: the quality check needs the photos; --from-results has none")

    def progress(done: BulkEnrolment) -> None:
        if not args.json:
            print(f"  {done.added} faces written", file=sys.stderr, flush=True)

    with FaceDatabase(_url(args)) as db:
        done = enroll_results(
            db.gallery,
            args.collection,
            args.from_results,
            largest=args.largest_face,
            on_batch=progress,
        )
    skipped = ", ".join(f"{count} {reason}" for reason, count in done.skipped.items() if count)
    _emit(
        args,
        {"collection": args.collection, **done.to_dict()},
        f"enrolled {counted(done.added, 'face')} of {counted(len(done.persons), 'person')} in "
        f"{args.collection} ({counted(done.batches, 'transaction')}); skipped "
        f"{counted(sum(done.skipped.values()), 'photo')}{': ' + skipped if skipped else ''}",
    )
    return 0


def run_identify(args: argparse.Namespace) -> int:
    """Identify every face of each photo; exit 1 if a photo could not be read."""
    records: list[dict[str, Any]] = []
    failed = False
    with _database(args) as db:
        for path in args.images:
            try:
                found = db.identify(
                    args.collection, path, args.top, threshold=args.threshold, far=args.far
                )
            except ImageError as error:
                print(f"kao: error: {error}", file=sys.stderr)
                records.append({"image": describe(path), "error": error.reason})
                failed = True
                continue
            records.append({"image": describe(path), "faces": [item.to_dict() for item in found]})
    if args.json:
        print(json.dumps(records, indent=2))
        return int(failed)
    for record in records:
        if "faces" not in record:
            continue
        print(f"{record['image']}: {counted(len(record['faces']), 'face')}")
        for number, face in enumerate(record["faces"], 1):
            who = face["person"] or "unknown"
            shown = ", ".join(f"{m['person']} {m['similarity']:.0%}" for m in face["matches"])
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            print(f"  face {number} [{box}]: {who}  ({shown or 'empty collection'})")
    return int(failed)


def run_list(args: argparse.Namespace) -> int:
    """Collections with their counts, or one collection's persons (or faces)."""
    with FaceDatabase(_url(args)) as db:
        if args.collection and args.faces:
            faces = db.faces(args.collection)
            document: Any = [face.summary() for face in faces]
            text = "\n".join(f"{f.id:>6}  {f.person}  {f.source}" for f in faces)
        elif args.collection:
            persons = db.persons(args.collection)
            document = [{"person": p.person, "faces": p.faces} for p in persons]
            text = "\n".join(f"{p.person}  ({counted(p.faces, 'face')})" for p in persons)
        else:
            collections = db.list_collections()
            document = [
                {"collection": c.name, "persons": c.persons, "faces": c.faces, "model": c.model}
                for c in collections
            ]
            text = "\n".join(
                f"{c.name}  ({counted(c.persons, 'person')}, {counted(c.faces, 'face')}"
                f"{', ' + c.model if c.model else ''})"
                for c in collections
            )
    _emit(args, document, text or "(empty)")
    return 0


def run_reembed(args: argparse.Namespace) -> int:
    """Re-embed a collection; exit 1 when photos could not be read and nothing was written."""
    with FaceDatabase(_url(args)) as db:
        result = db.reembed(
            args.collection, args.model, root=args.root, drop_unreadable=args.drop_unreadable
        )
    lines = [f"  face {u.face_id} ({u.person}, {u.source}): {u.reason}" for u in result.unreadable]
    if result.written:
        head = (
            f"re-embedded {counted(len(result.ids), 'face')} of {args.collection} with {args.model}"
        )
        if result.unreadable:
            head += (
                f"; deleted {counted(len(result.unreadable), 'face')} whose photo is unreadable:"
            )
    else:
        head = (
            f"nothing changed: {counted(len(result.unreadable), 'face')} of {args.collection} "
            "cannot be re-embedded (use --drop-unreadable to delete them, or --root DIR):"
        )
    _emit(args, result.to_dict(), "\n".join([head, *lines]))
    return 0 if result.written else 1


def run_change(args: argparse.Namespace) -> int:
    """The changing `kao db` actions."""
    c = args.collection
    with FaceDatabase(_url(args)) as db:
        if args.change == "delete-collection":
            db.delete_collection(c)
            document, text = {"deleted": c}, f"deleted collection {c}"
        elif args.change == "delete-person":
            count = db.delete_person(c, args.person)
            document, text = (
                {"deleted": args.person, "faces": count},
                (f"deleted {args.person} ({counted(count, 'face')})"),
            )
        elif args.change == "delete-face":
            db.delete_face(c, args.face_id)
            document, text = {"deleted": args.face_id}, f"deleted face {args.face_id}"
        elif args.change == "rename":
            db.rename_person(c, args.old, args.new)
            document, text = (
                {"renamed": args.old, "to": args.new},
                f"renamed {args.old} to {args.new}",
            )
        elif args.change == "export":
            count = db.export(c, Path(args.file))
            document = {"exported": count, "file": args.file}
            text = f"exported {counted(count, 'face')}"
        else:
            count = db.import_(c, Path(args.file))
            document = {"imported": count, "file": args.file}
            text = f"imported {counted(count, 'face')}"
    _emit(args, document, text)
    return 0
