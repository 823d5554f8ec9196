"""/v1/collections...: collections, enrolment, identification and deletion in the face database.

Answers have the shapes `kao db list --json`, `kao enroll --json`, `kao identify --json` and the
`kao db delete-...` commands print. Collection names in URLs cannot contain "/"; person names
can (the person is the last part of its URL)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, status

from kao.gallery.database import PoorFaceError
from kao.recognition import NoFaceError
from kao.server.auth import service
from kao.server.errors import ApiError
from kao.server.routes_images import (
    chosen_threshold,
    decode,
    far_query,
    model_query,
    threshold_query,
)
from kao.server.service import Checked
from kao.server.uploads import json_body, openapi_body, openapi_json_body, read_images, read_text

router = APIRouter(prefix="/collections")
NAME_BODY = openapi_json_body(
    {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
)
"""The OpenAPI body of the requests that send {"name": ...} (create a collection, rename)."""
BOX_QUERY = Query(
    None,
    description="one per photo, in their order: the face to enrol is the one at this box "
    "(x1,y1,x2,y2 in pixels, e.g. a face /v1/group found) instead of the largest",
)
"""enroll's repeatable `box` parameter."""


@router.get("", summary="Every collection with its numbers of persons and faces")
async def list_collections(request: Request) -> list[dict[str, Any]]:
    """[{"collection", "persons", "faces", "model" (its faces' recognition model, null while it
    has none)}], as `kao db list --json`."""
    svc = service(request)
    collections = await svc.run(svc.database.list_collections)
    return [
        {"collection": c.name, "persons": c.persons, "faces": c.faces, "model": c.model}
        for c in collections
    ]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a collection",
    openapi_extra=NAME_BODY,
)
async def create_collection(request: Request) -> dict[str, Any]:
    """Body {"name": "family"} -> {"collection": "family"}; 409 when it exists."""
    svc = service(request)
    name = (await json_body(request)).get("name")
    if not isinstance(name, str):
        raise ApiError(400, 'send {"name": "<collection name>"} as JSON')
    await svc.run(svc.database.create_collection, name)
    return {"collection": name}


@router.delete("/{collection}", summary="Delete a collection and all its faces")
async def delete_collection(request: Request, collection: str) -> dict[str, Any]:
    """{"deleted": collection}; 404 when there is no such collection."""
    svc = service(request)
    await svc.run(svc.database.delete_collection, collection)
    return {"deleted": collection}


@router.get("/{collection}/persons", summary="The persons of a collection")
async def list_persons(request: Request, collection: str) -> list[dict[str, Any]]:
    """[{"person", "faces"}], as `kao db list --collection C --json`."""
    svc = service(request)
    persons = await svc.run(svc.database.persons, collection)
    return [{"person": p.person, "faces": p.faces} for p in persons]


@router.get("/{collection}/faces", summary="Every face of a collection")
async def list_faces(request: Request, collection: str) -> list[dict[str, Any]]:
    """[{"id", "person", "model", "source", "box", "created"}], as `kao db list --faces`."""
    svc = service(request)
    faces = await svc.run(svc.database.faces, collection)
    return [{**face.summary(), "source": base_name(face.source)} for face in faces]


def base_name(source: str) -> str:
    """A photo's source as the API shows it: a file path without its folders (the server's
    folders are not the caller's business); other sources unchanged."""
    return source.replace("\\", "/").rsplit("/", 1)[-1] or source


@router.post(
    "/{collection}/enroll",
    status_code=status.HTTP_201_CREATED,
    summary="Add photos of a person to a collection",
    openapi_extra=openapi_body({"images": True}, {"person": "the person's name or id"}),
)
async def enroll(
    request: Request,
    collection: str,
    model: str | None = model_query(collection=True),
    force: bool = Query(False, description="enrol faces too poor to enrol by default"),
    box: list[str] | None = BOX_QUERY,
) -> dict[str, Any]:
    """The largest face of each photo (or the face at its `box`) is enrolled as `person`, all
    photos or none -> {"collection", "person", "added": [face ids], "faces": the person's faces
    in all}; 404 for an unknown collection (create it first), 422 naming a photo without a face
    (at its box), or whose face is too small, blurred, dark or turned to enrol (unless
    `force`; see `kao.quality.enrolment_problem`), or for an unknown `model`, 409 when the
    collection holds faces of another model than `model`; 400 for boxes that are not 4
    numbers each, one per photo."""
    svc = service(request)
    uploads = (await read_images(request, {"images": True}))["images"]
    person = await read_text(request, "person")
    boxes = None if box is None else [parse_box(text) for text in box]
    if boxes is not None and len(boxes) != len(uploads):
        raise ApiError(400, f"{len(boxes)} boxes for {len(uploads)} photos: send one per photo")

    def work() -> dict[str, Any]:
        db = svc.collection_database(model)
        db.revision(collection)  # 404 unless the collection exists
        photos = Checked(uploads, lambda upload: decode(upload, "images"))  # one at a time
        try:
            ids = db.enroll(collection, person, photos, force=force, boxes=boxes)
        except (NoFaceError, PoorFaceError) as error:
            blamed = uploads[photos.last]  # enroll embeds each photo as it reads it
            reason = error.problem if isinstance(error, PoorFaceError) else "no face found"
            if boxes is not None and isinstance(error, NoFaceError):
                reason = "no face at box " + box[photos.last]
            more = " (force=true enrols it anyway)" if isinstance(error, PoorFaceError) else ""
            raise ApiError(
                422, f"{blamed.label('images')}: {reason}; nothing was enrolled{more}"
            ) from None
        faces = len(db.faces(collection, person))
        return {"collection": collection, "person": person, "added": ids, "faces": faces}

    return await svc.run(work)


def parse_box(text: str) -> list[float]:
    """A `box` query value "x1,y1,x2,y2" as 4 numbers, or 400."""
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) != 4:
        raise ApiError(400, f"box {text!r} is not 4 numbers x1,y1,x2,y2")
    return numbers


@router.post(
    "/{collection}/identify",
    summary="Who is in a photo",
    openapi_extra=openapi_body({"image": False}),
)
async def identify(
    request: Request,
    collection: str,
    top: int = Query(3, ge=1, le=100, description="best matching persons per face"),
    model: str | None = model_query(collection=True),
    threshold: float | None = threshold_query(),
    far: float | None = far_query(),
) -> dict[str, Any]:
    """{"image", "faces": [{"box", "matches": [{"person", "similarity" 0-1}], "person" (null
    when unknown: farther than `threshold`, or than the distance at false-accept rate `far`,
    default the model's calibrated threshold)}]}, as each record of `kao identify --json`; 404
    for an unknown collection, 409 when it holds faces of another model than `model` (default:
    the collection's own; 422 for an unknown one, for both `threshold` and `far`, or a `far`
    outside the model's table)."""
    svc = service(request)
    (upload,) = (await read_images(request, {"image": False}))["image"]

    def work() -> dict[str, Any]:
        db = svc.collection_database(model)
        db.revision(collection)  # 404 unless the collection exists
        limit = chosen_threshold(db.embedder_for(collection).model_name, threshold, far)
        found = db.identify(collection, decode(upload, "image"), top, threshold=limit)
        return {"image": upload.name, "faces": [item.to_dict() for item in found]}

    return await svc.run(work)


@router.delete("/{collection}/faces/{face_id}", summary="Delete one face")
async def delete_face(request: Request, collection: str, face_id: int) -> dict[str, Any]:
    """{"deleted": face id}; a person left without faces goes too; 404 for an unknown face."""
    svc = service(request)
    await svc.run(svc.database.delete_face, collection, face_id)
    return {"deleted": face_id}


@router.post(
    "/{collection}/persons/{person:path}",
    summary="Rename a person",
    openapi_extra=NAME_BODY,
)
async def rename_person(request: Request, collection: str, person: str) -> dict[str, Any]:
    """Body {"name": "new name"} -> {"renamed": person, "to": new name}, as `kao db rename
    --json`; 404 for an unknown person, 409 when the new name is taken."""
    svc = service(request)
    name = (await json_body(request)).get("name")
    if not isinstance(name, str):
        raise ApiError(400, 'send {"name": "<new name>"} as JSON')
    await svc.run(svc.database.rename_person, collection, person, name)
    return {"renamed": person, "to": name}


@router.delete("/{collection}/persons/{person:path}", summary="Delete a person and their faces")
async def delete_person(request: Request, collection: str, person: str) -> dict[str, Any]:
    """{"deleted": person, "faces": how many faces went}; 404 for an unknown person."""
    svc = service(request)
    count = await svc.run(svc.database.delete_person, collection, person)
    return {"deleted": person, "faces": count}
