"""/v1/detect, /v1/embed, /v1/analyze, /v1/verify and /v1/group: images in, JSON out;
/v1/group/embeddings: faces embedded by /v1/embed in, grouped; and /v1/models, the recognition
models.

Answers have the shapes `kao detect --json`, `kao embed --json`, `kao analyze --json`, `kao
verify --json` and `kao group --json` print, with "image" the uploaded file's name (or the JSON
field's)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request

from kao.errors import ImageError, KaoError
from kao.face import face_index
from kao.image import load_image
from kao.quality import rated
from kao.recognition import NoFaceError, cluster, verify
from kao.recognition.embedder import DEFAULT_MODEL, RECOGNITION_MODELS, model_table
from kao.recognition.verify import decision_threshold
from kao.server.auth import service
from kao.server.errors import ApiError, from_kao_error
from kao.server.service import Service, check_cancelled
from kao.server.uploads import Upload, json_body, openapi_body, openapi_json_body, read_images

router = APIRouter()


def model_query(*, collection: bool = False) -> Any:
    """The ``model`` query parameter: the recognition model (one of RECOGNITION_MODELS); with
    `collection`, absent (None) means the collection's own model."""
    default = (
        f"the collection's model, {DEFAULT_MODEL} for a new one" if collection else DEFAULT_MODEL
    )
    return Query(
        None if collection else DEFAULT_MODEL,
        description=f"recognition model, one of {', '.join(RECOGNITION_MODELS)} "
        f"(default: {default})",
    )


@router.get("/models", summary="The recognition models and their default thresholds")
async def models() -> dict[str, Any]:
    """{"default": the default model, "recognition": [{"name", "dimension", "threshold" (the
    calibrated Euclidean distance), "default", "weights"}]}: the values of `model`, as `kao
    models list --json` shows them; no model is loaded."""
    return {"default": DEFAULT_MODEL, "recognition": model_table()}


def threshold_query() -> Any:
    """The ``threshold`` query parameter: same person below this Euclidean distance."""
    return Query(
        None,
        gt=0,
        le=2,
        description="same person below this Euclidean distance; default: the model's calibrated "
        "threshold (give this or far, not both)",
    )


def far_query() -> Any:
    """The ``far`` query parameter: the false-accept rate that picks the threshold."""
    return Query(
        None,
        description="same person below the distance at which this share of strangers would "
        "match on LFW, 1e-5 to 0.1 (e.g. 1e-4); give this or threshold, not both",
    )


def chosen_threshold(model: str, threshold: float | None, far: float | None) -> float:
    """The distance threshold of `threshold` / `far` for `model` (see
    `kao.recognition.verify.decision_threshold`), or 422 saying why not."""
    try:
        return decision_threshold(model, threshold=threshold, far=far)
    except KaoError as error:
        raise ApiError(422, str(error)) from None


def decode(upload: Upload, field: str) -> np.ndarray:
    """The upload as H x W x 3 uint8 RGB, or 422 (413 over the pixel limit) naming it. Stops
    (`Cancelled`) before and after decoding when the request has ended."""
    check_cancelled()
    try:
        rgb = load_image(upload.data)
    except ImageError as error:
        raise from_kao_error(error, upload.label(field)) from None
    check_cancelled()
    return rgb


def image_record(upload: Upload, rgb: np.ndarray, faces: list[dict[str, Any]]) -> dict[str, Any]:
    """{"image", "width", "height", "faces"}: one image's record, as the CLI prints it."""
    return {
        "image": upload.name,
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "faces": faces,
    }


@router.post(
    "/detect",
    summary="Find faces: boxes, scores and 5 keypoints",
    openapi_extra=openapi_body({"image": False}),
)
async def detect(request: Request) -> dict[str, Any]:
    """Every face of `image`, best score first: {"image", "width", "height", "faces": [{"box":
    [x1, y1, x2, y2] pixels, "score" 0-1, "keypoints": 5 x [x, y] pixels}]}."""
    svc = service(request)
    (upload,) = (await read_images(request, {"image": False}))["image"]

    def work() -> dict[str, Any]:
        rgb = decode(upload, "image")
        faces = rated(rgb, svc.embedder.detector.detect(rgb))
        return image_record(upload, rgb, [face.to_dict() for face in faces])

    return await svc.run(work)


@router.post(
    "/embed",
    summary="Every face with its embedding, from a chosen recognition model",
    openapi_extra=openapi_body({"image": False}),
)
async def embed(request: Request, model: str = model_query()) -> dict[str, Any]:
    """{"image", "width", "height", "model", "faces": [{"box", "score", "keypoints",
    "embedding": D floats, L2-normalised}]}, as each record of `kao embed --json`; 422 for an
    unknown `model`."""
    svc = service(request)
    (upload,) = (await read_images(request, {"image": False}))["image"]

    def work() -> dict[str, Any]:
        embedder, _ = svc.recognition(model)
        rgb = decode(upload, "image")
        faces = [face.to_dict(embedding=True) for face in embedder.embed(rgb)]
        return image_record(upload, rgb, faces) | {"model": model}

    return await svc.run(work)


@router.post(
    "/analyze",
    summary="Landmarks, head pose, gaze, age, gender, emotion and mask of every face",
    openapi_extra=openapi_body({"image": False}),
)
async def analyze(
    request: Request,
    cropped: bool = Query(False, description="the image is already one face crop: no detection"),
    mesh: bool = Query(False, description="include the 468 mesh and iris points"),
) -> dict[str, Any]:
    """The record `kao analyze --json` prints for the image; 503 when this server has no
    analysis models."""
    svc = service(request)
    analyzer = svc.require_analyzer()
    (upload,) = (await read_images(request, {"image": False}))["image"]

    def work() -> dict[str, Any]:
        rgb = decode(upload, "image")
        found = [] if cropped else analyzer.detector.detect(rgb)  # as analyzer.analyze does,
        check_cancelled()  # with a stop between detection and analysis
        faces = analyzer.analyze_faces(rgb, found, cropped=cropped)
        return image_record(upload, rgb, [f.to_dict(mesh=mesh) for f in faces])

    return await svc.run(work)


@router.post(
    "/verify",
    summary="Are the faces of two images the same person?",
    openapi_extra=openapi_body({"a": False, "b": False}),
)
async def verify_pair(
    request: Request,
    face_a: int | None = Query(
        None,
        ge=1,
        description="face of A to use, numbered from 1 as /v1/detect lists them; default: the "
        "largest",
    ),
    face_b: int | None = Query(None, ge=1, description="face of B to use; default: the largest"),
    model: str = model_query(),
    threshold: float | None = threshold_query(),
    far: float | None = far_query(),
) -> dict[str, Any]:
    """{"same", "distance", "threshold", "similarity" 0-1, "far" (share of strangers who would
    match this closely), "model", "a"/"b": {"faces", "face" (numbered from 1), "box"}}, as `kao
    verify --json`; 422 when an image has no face (or not the one asked), an unknown `model`,
    both `threshold` and `far`, or a `far` outside the model's table."""
    svc = service(request)
    found = await read_images(request, {"a": False, "b": False})
    (a,), (b,) = found["a"], found["b"]

    def work() -> dict[str, Any]:
        embedder, _ = svc.recognition(model)
        limit = chosen_threshold(model, threshold, far)
        rgb_a, rgb_b = decode(a, "a"), decode(b, "b")
        try:
            return verify(
                rgb_a,
                rgb_b,
                index_a=face_index(face_a),
                index_b=face_index(face_b),
                embedder=embedder,
                threshold=limit,
            ).to_dict()
        except KaoError as error:
            # verify reads A first, so the error is A's when A lacks the face asked for.
            faces = len(embedder.detector.detect(rgb_a))
            blame_a = faces == 0 or (face_a is not None and face_a > faces)
            raise _named(error, a.label("a") if blame_a else b.label("b")) from None

    return await svc.run(work)


def _named(error: KaoError, label: str) -> ApiError:
    """422 for an image's face error, its message starting with `label` instead of the array's
    description."""
    if isinstance(error, NoFaceError):
        return ApiError(422, f"{label}: no face found")
    reason = str(error).split(": ", 1)[-1]
    return ApiError(422, f"{label}: {reason}")


@router.post(
    "/group",
    summary="Sort the faces of several images by person, without names",
    openapi_extra=openapi_body({"images": True}),
)
async def group(
    request: Request,
    threshold: float | None = Query(
        None,
        gt=0,
        le=2,
        description="merge groups closer than this (Euclidean distance); default: the model's "
        "own cut",
    ),
    far: float | None = far_query(),
    model: str = model_query(),
) -> dict[str, Any]:
    """{"people", "faces", "images", "groups": [{"person" (from 1), "faces": [{"image", "box"}]}],
    "errors": [{"image", "error"}]}, as `kao group --json`; an image that cannot be read is
    listed in "errors" and the others are still grouped. `far` merges groups closer than the
    distance at that false-accept rate (422 with `threshold` too, or outside the model's
    table)."""
    svc = service(request)
    uploads = (await read_images(request, {"images": True}))["images"]
    return await svc.run(_group, svc, uploads, threshold, far, model)


def _group(
    svc: Service, uploads: list[Upload], threshold: float | None, far: float | None, model: str
) -> dict[str, Any]:
    def photos() -> Iterator[bytes]:
        for upload in uploads:
            check_cancelled()
            yield upload.data

    names = [upload.name for upload in uploads]
    embedder, _ = svc.recognition(model)
    cut = group_cut(model, threshold, far)
    grouping = cluster.group(photos(), threshold=cut, names=names, embedder=embedder)
    return grouping.to_dict()


def group_cut(model: str, threshold: float | None, far: float | None) -> float:
    """The distance `kao.recognition.cluster.group_threshold` cuts `model`'s groups at, or 422
    saying why not."""
    try:
        return cluster.group_threshold(model, threshold=threshold, far=far)
    except KaoError as error:
        raise ApiError(422, str(error)) from None


MAX_GROUP_FACES = 5_000
"""Most faces one /v1/group/embeddings request may carry (average linkage keeps N^2/2
distances: 100 MB at this size, and took 17 s on 2 busy cores). The upload limit bounds the body
too: a face of /v1/embed is about 11.5 KB of JSON with EdgeFace (512-d), 3 KB with dlib."""
MAX_NAME = 1_000
"""Longest image name (characters) /v1/group/embeddings accepts."""
GROUP_EMBEDDINGS_BODY = openapi_json_body(
    {
        "type": "object",
        "required": ["faces", "images"],
        "properties": {
            "model": {"type": "string", "description": "the faces' model"},
            "threshold": {"type": "number"},
            "far": {"type": "number"},
            "images": {"type": "integer", "description": "photos tried"},
            "faces": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["image", "box", "embedding"],
                    "properties": {
                        "image": {"type": "string"},
                        "box": {"type": "array", "items": {"type": "number"}},
                        "embedding": {"type": "array", "items": {"type": "number"}},
                    },
                },
            },
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string"},
                        "error": {"type": "string"},
                    },
                },
            },
        },
    }
)
"""The OpenAPI body of /v1/group/embeddings."""


@router.post(
    "/group/embeddings",
    summary="Sort faces embedded by /v1/embed by person, without names",
    openapi_extra=GROUP_EMBEDDINGS_BODY,
)
async def group_embeddings(request: Request) -> dict[str, Any]:
    """The answer /v1/group gives for the same photos, from their faces as /v1/embed found
    them (so a large set can be embedded a few photos per request and grouped at once). JSON
    body: {"model" (default: the default model), "threshold" or "far" (as /v1/group's),
    "images": how many photos were tried, "faces": [{"image", "box" [x1, y1, x2, y2],
    "embedding" (D floats of the model, unit length)}, ...] in the order /v1/embed gave them,
    photo by photo (other keys of its records are ignored), "errors": [{"image", "error"}] of
    photos /v1/embed could not read (optional)}. At most `MAX_GROUP_FACES` faces; 400 naming
    the field for a malformed body, 422 for an unknown model or a bad threshold / far."""
    svc = service(request)
    body = await json_body(request)
    model = body.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or model not in RECOGNITION_MODELS:
        raise ApiError(422, f"'model' must be one of {', '.join(RECOGNITION_MODELS)}")
    cut = group_cut(model, _number(body, "threshold"), _number(body, "far"))
    dimension = next(row["dimension"] for row in model_table() if row["name"] == model)
    faces = body.get("faces")
    if not isinstance(faces, list) or len(faces) > MAX_GROUP_FACES:
        raise ApiError(400, f"'faces' must be a list of at most {MAX_GROUP_FACES} faces")
    found = [_embedded_face(face, f"faces[{i}]", dimension) for i, face in enumerate(faces)]
    errors = body.get("errors", [])
    if not isinstance(errors, list) or len(errors) > MAX_GROUP_FACES:
        raise ApiError(400, f"'errors' must be a list of at most {MAX_GROUP_FACES} items")
    failed = [_image_error(item, f"errors[{i}]") for i, item in enumerate(errors)]
    named = {f.image for f in found} | {e.source for e in failed}
    images = body.get("images")
    if type(images) is not int or not len(named) <= images <= MAX_GROUP_FACES:
        raise ApiError(
            400,
            f"'images' must be the number of photos tried, an integer from {len(named)} (the "
            f"photos named in 'faces' and 'errors') to {MAX_GROUP_FACES}",
        )

    def work() -> dict[str, Any]:
        return cluster.group_faces(found, images, failed, threshold=cut).to_dict()

    return await svc.run(work)


def _number(body: dict[str, Any], field: str) -> float | None:
    """The finite number `body[field]`, None when absent or null, else 400 naming it."""
    value = body.get(field)
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ApiError(400, f"{field!r} must be a finite number")
    return float(value)


def _name(item: Any, key: str, field: str) -> str:
    """The non-empty string `item[key]` (at most `MAX_NAME` characters), else 400."""
    value = item.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise ApiError(400, f"'{field}.{key}' must be a string of 1 to {MAX_NAME} characters")
    return value


def _floats(item: dict[str, Any], key: str, field: str, count: int) -> list[float]:
    """`item[key]` as `count` finite numbers, else 400 naming the field."""
    value = item.get(key)
    if (
        not isinstance(value, list)
        or len(value) != count
        or any(type(v) not in (int, float) or not math.isfinite(v) for v in value)
    ):
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        raise ApiError(400, f"'{field}.{key}' must be {count} finite numbers (got {got})")
    return [float(v) for v in value]


def _embedded_face(item: Any, field: str, dimension: int) -> cluster.FoundFace:
    """One face of /v1/group/embeddings, checked: a box with x1 < x2 and y1 < y2, and a unit
    embedding of the model's `dimension`; else 400 naming `field`."""
    if not isinstance(item, dict):
        raise ApiError(400, f"{field!r} must be an object with image, box and embedding")
    image = _name(item, "image", field)
    box = _floats(item, "box", field, 4)
    if not (box[0] < box[2] and box[1] < box[3]):
        raise ApiError(400, f"'{field}.box' must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2")
    embedding = _floats(item, "embedding", field, dimension)
    norm = math.sqrt(sum(v * v for v in embedding))
    if abs(norm - 1) > 1e-3:
        raise ApiError(400, f"'{field}.embedding' must have length 1 (has {norm:.4g})")
    return cluster.FoundFace.embedded(image, box, embedding)


def _image_error(item: Any, field: str) -> ImageError:
    """One item of "errors": {"image", "error"} strings, else 400 naming `field`."""
    if not isinstance(item, dict):
        raise ApiError(400, f"{field!r} must be an object with image and error")
    return ImageError(_name(item, "image", field), _name(item, "error", field))
