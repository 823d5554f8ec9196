"""Images in requests: multipart file uploads, or base64 strings in a JSON body.

An endpoint names its image fields; each is one image (``image``, ``a``, ``b``) or a list of
them (``images``). In ``multipart/form-data`` a field is a file part (repeated for a list); in
``application/json`` it is a base64 string (a list of them for a list), optionally as a data
URL (``data:image/jpeg;base64,...``). Every mistake is an `ApiError` naming the field."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from kao.server.errors import ApiError

MAX_IMAGES = 200
"""Most images one request may carry."""


@dataclass(frozen=True)
class Upload:
    """One image of a request: `name` (the file name, else the field, e.g. "images[2]")
    and its encoded bytes."""

    name: str
    data: bytes

    def label(self, field: str) -> str:
        """How messages name it: "'a' (photo.jpg)", or "'a'" without a file name."""
        return f"{field!r}" if self.name == field else f"{field!r} ({self.name})"


def media_type(request: Request) -> str:
    """The request's Content-Type without its parameters, lower case."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or 400 saying what is wrong with it (the API's bodies are
    flat: one object whose values are strings or lists of strings)."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise ApiError(400, "the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the JSON body must be an object, not {type(body).__name__}")
    return body


async def read_images(request: Request, fields: Mapping[str, bool]) -> dict[str, list[Upload]]:
    """The images of `fields` (name -> whether it is a list) -> name -> uploads (one for a
    single image, at least one for a list). 415 for other content types, 400 for a missing or
    malformed field."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        found = await _from_form(request, fields)
    elif kind == "application/json":
        found = _from_json(await json_body(request), fields)
    else:
        raise ApiError(
            415,
            f"send the images as multipart/form-data or as base64 in application/json, "
            f"not {kind or 'a body without Content-Type'}",
        )
    for field, many in fields.items():
        uploads = found.get(field, [])
        if not uploads:
            raise ApiError(400, _missing(field, many))
        if not many and len(uploads) > 1:
            raise ApiError(400, f"field {field!r} takes one image, got {len(uploads)}")
        if len(uploads) > MAX_IMAGES:
            raise ApiError(400, f"field {field!r} has {len(uploads)} images (max {MAX_IMAGES})")
        for upload in uploads:
            if not upload.data:
                raise ApiError(400, f"{upload.label(field)} is empty")
    return found


def _missing(field: str, many: bool) -> str:
    if many:
        how = f"as file parts named {field!r} or as a JSON list of base64 strings"
    else:
        how = f"as a file part named {field!r} or as a base64 string in JSON"
    return f"missing image field {field!r}: send it {how}"


async def _from_form(request: Request, fields: Mapping[str, bool]) -> dict[str, list[Upload]]:
    found: dict[str, list[Upload]] = {}
    async with request.form(max_files=MAX_IMAGES + 1) as form:
        for field in fields:
            uploads = []
            for part in form.getlist(field):
                if not isinstance(part, UploadFile):
                    raise ApiError(
                        400, f"field {field!r} must be a file part (with a filename), not text"
                    )
                uploads.append(Upload(part.filename or field, await part.read()))
            found[field] = uploads
    return found


def _from_json(body: dict[str, Any], fields: Mapping[str, bool]) -> dict[str, list[Upload]]:
    found: dict[str, list[Upload]] = {}
    for field, many in fields.items():
        if field not in body:
            continue
        value = body[field]
        if many:
            if not isinstance(value, list):
                raise ApiError(400, f"field {field!r} must be a list of base64 strings")
            found[field] = [
                Upload(f"{field}[{i}]", _decode(item, f"{field}[{i}]"))
                for i, item in enumerate(value)
            ]
        else:
            found[field] = [Upload(field, _decode(value, field))]
    return found


def _decode(value: object, name: str) -> bytes:
    """Base64 (or a base64 data URL) -> bytes; 400 naming `name` when it is not."""
    if not isinstance(value, str):
        raise ApiError(400, f"{name!r} must be a base64 string, not {type(value).__name__}")
    text = value.strip()
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ApiError(400, f"{name!r} is a data URL but not a base64 one")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError(400, f"{name!r} is not valid base64 ({error})") from None


async def read_text(request: Request, field: str) -> str:
    """The text field `field` of a multipart form or a JSON body (after `read_images`), or
    400 when it is missing or not text."""
    if media_type(request) == "multipart/form-data":
        async with request.form() as form:
            value: Any = form.get(field)
    else:
        value = (await json_body(request)).get(field)
    if value is None:
        raise ApiError(400, f"missing field {field!r}")
    if not isinstance(value, str):
        raise ApiError(400, f"field {field!r} must be text")
    return value


def openapi_json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI description of a required JSON request body of `schema`."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def openapi_body(images: Mapping[str, bool], text: Mapping[str, str] | None = None) -> dict:
    """The OpenAPI description of a request body with the image fields `images` (name ->
    whether it is a list) and the text fields `text` (name -> description), both forms."""
    text = text or {}
    files: dict[str, Any] = {}
    encoded: dict[str, Any] = {}
    for name, many in images.items():
        one_file = {"type": "string", "format": "binary"}
        one_b64 = {"type": "string", "format": "byte", "description": "base64 or a data URL"}
        files[name] = {"type": "array", "items": one_file} if many else one_file
        encoded[name] = {"type": "array", "items": one_b64} if many else one_b64
    for name, description in text.items():
        files[name] = encoded[name] = {"type": "string", "description": description}
    required = [*images, *text]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": files, "required": required}
                },
                "application/json": {
                    "schema": {"type": "object", "properties": encoded, "required": required}
                },
            },
        }
    }
