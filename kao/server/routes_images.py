"""/v1/detect, /v1/embed, /v1/analyze, /v1/verify and /v1/group: images in, JSON out; and
/v1/models, the recognition models.

Answers have the shapes `kao detect --json`, `kao embed --json`, `kao analyze --json`, `kao
verify --json` and `kao group --json` print, with "image" the uploaded file's name (or the JSON
field's)."""

from __future__ import annotations

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
from kao.server.uploads import Upload, openapi_body, read_images

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
    if far is not None:
        threshold = chosen_threshold(model, threshold, far)
    grouping = cluster.group(photos(), threshold=threshold, names=names, embedder=embedder)
    return grouping.to_dict()
