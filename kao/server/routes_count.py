"""/v1/count: the people in an uploaded image (crowd density maps or face detection), in the
whole image or a region of it, with head points if asked; the record `kao count --json` prints
for one image, with "image" the uploaded file's name."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Query, Request

from kao.crowd import METHOD_CHOICES, CrowdCounter
from kao.crowd.output import count_output
from kao.crowd.roi import Roi
from kao.errors import KaoError
from kao.server.auth import service
from kao.server.errors import ApiError, from_kao_error
from kao.server.routes_images import decode
from kao.server.uploads import openapi_body, read_images

router = APIRouter()
_lock = threading.Lock()


def counter(request: Request) -> CrowdCounter:
    """The app's counter, made at the first count (its models load when first needed)."""
    state = request.app.state
    with _lock:
        if getattr(state, "counter", None) is None:
            state.counter = CrowdCounter()
        return state.counter


@router.post(
    "/count",
    summary="Count the people in an image, or in a region of it",
    openapi_extra=openapi_body({"image": False}),
)
async def count(
    request: Request,
    method: str = Query(
        "auto", description=f"how to count: one of {', '.join(METHOD_CHOICES)} (as kao count)"
    ),
    roi: str | None = Query(
        None,
        description='count inside this polygon only: "x1,y1 x2,y2 x3,y3 ..." in pixels, or '
        "fractions of the width and height when every number is between 0 and 1",
    ),
    points: bool = Query(False, description="add approximate head points (density peaks)"),
) -> dict[str, Any]:
    """{"image", "width", "height", "count", "estimate", "range": [low, high], "method", and
    "faces" (detection), "roi": {"polygon", "image_count"} (with a region), "points": [[x, y],
    ...] (when asked)}; 400 for an unknown method or a bad region."""
    if method not in METHOD_CHOICES:
        raise ApiError(400, f"method must be one of {', '.join(METHOD_CHOICES)}, got {method!r}")
    try:
        region = Roi.parse(roi) if roi is not None else None
    except KaoError as error:
        raise from_kao_error(error) from None
    svc = service(request)
    (upload,) = (await read_images(request, {"image": False}))["image"]
    crowd = counter(request)

    def work() -> dict[str, Any]:
        rgb = decode(upload, "image")
        height, width = rgb.shape[:2]
        try:
            output = count_output(
                crowd.count(rgb, method), width, height, roi=region, points=points
            )
        except KaoError as error:
            raise from_kao_error(error, upload.label("image")) from None
        return {"image": upload.name, "width": width, "height": height} | output.to_dict()

    return await svc.run(work)
