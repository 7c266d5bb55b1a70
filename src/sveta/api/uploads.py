"""Photo uploads: a body-size guard, the declared type, the image checks (bytes, pixels, decoding), temp files."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, File, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sveta.api.deps import get_settings
from sveta.api.errors import ApiError, error_body
from sveta.errors import InputError
from sveta.images.checks import FORMATS, inspect_image, sniff
from sveta.settings import Settings

MULTIPART_SLACK = 64 * 1024  # room for the multipart envelope around a photo of the largest size
DRAIN_MOST = 64 * 1024 * 1024  # of a refused body, read and discard at least this much before answering
CLOSE = {"Connection": "close"}  # a refused body's connection is not reused (the rest may not have been read)
_ACCEPTED_TYPES = ("image/", "application/octet-stream")
_UPLOAD_HINT = "send a JPEG, PNG or WEBP photo as the multipart field 'file'"
MAX_PHOTOS = 8  # photos one search takes (the body limit counts them together)


@dataclass
class UploadedPhoto:
    """A checked photo, written to a temp file for the library (removed after the response)."""

    name: str
    path: Path
    format: str
    width: int
    height: int


def too_large(limit: int, size: int | None = None) -> ApiError:
    """The 413 of an upload over the limit; ``size`` is the body's or the photo's, when known."""
    sent = f"{_amount(size)}, limit {_amount(limit)}" if size else f"over the {_amount(limit)} limit"
    return ApiError(413, f"photo too large: {sent}", "resize it, or raise SVETA_MAX_UPLOAD_BYTES on the server")


def _amount(n: int) -> str:
    return f"{n:,} bytes" if n < 1_000_000 else f"{n / 1_000_000:.1f}".removesuffix(".0") + " MB"


class BodyLimit:
    """Refuses request bodies over the upload limit: by Content-Length up front, else while they stream in.

    A refused body is read and thrown away (up to ``drain_most`` bytes, a chunk at a time) before the 413 is sent,
    with ``Connection: close``: a server that answers and closes while the client is still sending resets the
    connection, and the client then sees the reset, not the 413. A client that waits for ``100 Continue`` has sent
    nothing and is answered at once.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.limit, self.max_bytes = app, max_bytes, max_bytes + MULTIPART_SLACK
        self.drain_most = max(DRAIN_MOST, 4 * self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            waiting = headers.get(b"expect", b"").lower() == b"100-continue"  # the client sends nothing until told
            if not waiting and int(length) <= self.drain_most:  # a larger one would be reset anyway: no use reading
                await drain(receive, self.drain_most)
            await _refuse(send, too_large(self.limit, int(length)))
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                rest, ended = await drain(receive, self.drain_most) if message.get("more_body") else (0, True)
                error = too_large(self.limit, seen + rest if ended else None)
                error.headers = dict(CLOSE)
                raise error
            return message

        return counted


async def drain(receive: Receive, most: int) -> tuple[int, bool]:
    """Read and discard the rest of a request body, at most ``most`` bytes: (bytes read, whether it ended)."""
    read = 0
    while read <= most:
        message = await receive()
        read += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return read, True
    return read, False


async def _refuse(send: Send, error: ApiError) -> None:
    body = json.dumps(error_body(error.code, error.message, error.hint)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in CLOSE.items()]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def uploaded_photo(
    file: UploadFile = File(..., description="The photo: JPEG, PNG, WEBP, GIF, BMP or TIFF."),
    settings: Settings = Depends(get_settings),
) -> Iterator[UploadedPhoto]:
    """The dependency photo endpoints take: checks the upload, yields it as a temp file, then removes it."""
    photo = _checked(file, settings)
    try:
        yield photo
    finally:
        photo.path.unlink(missing_ok=True)


def uploaded_photos(
    file: list[UploadFile] = File(
        ..., description=f"One photo or up to {MAX_PHOTOS} (repeat the field): JPEG, PNG, WEBP, GIF, BMP or TIFF."
    ),
    settings: Settings = Depends(get_settings),
) -> Iterator[list[UploadedPhoto]]:
    """Several photos in the field ``file``, each checked as one is; all temp files removed after the response."""
    if len(file) > MAX_PHOTOS:
        raise ApiError(
            422,
            f"{len(file)} photos were sent, at most {MAX_PHOTOS} are searched at once",
            "send fewer photos",
            "input_error",
        )
    photos: list[UploadedPhoto] = []
    try:
        for upload in file:
            photos.append(_checked(upload, settings))
        yield photos
    finally:
        for photo in photos:
            photo.path.unlink(missing_ok=True)


def _checked(file: UploadFile, settings: Settings) -> UploadedPhoto:
    """One upload: its declared type, its size, the image checks; written to a temp file."""
    name = _safe_name(file.filename)
    _check_declared_type(file.content_type, name)
    data = _read_bounded(file, settings.max_upload_bytes)
    fmt, width, height = check_image(data, name, settings.image_max_pixels)
    return UploadedPhoto(name, _write_temp(data, FORMATS[fmt][1]), fmt, width, height)


def check_image(data: bytes, name: str, max_pixels: int) -> tuple[str, int, int]:
    """The library's image checks; bytes that are no image at all are 415, a bad or huge image 422."""
    try:
        return inspect_image(data, name, max_pixels)
    except InputError as exc:
        if sniff(data) is None:
            raise ApiError(415, exc.message, exc.hint or _UPLOAD_HINT, "not_an_image") from exc
        raise


def _check_declared_type(content_type: str | None, name: str) -> None:
    if content_type and not content_type.lower().startswith(_ACCEPTED_TYPES):
        raise ApiError(415, f"{name} was sent as {content_type}, not as an image", _UPLOAD_HINT, "not_an_image")


def _read_bounded(file: UploadFile, limit: int) -> bytes:
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit, file.size)
    if not data:
        raise ApiError(422, "the uploaded file is empty", _UPLOAD_HINT, "input_error")
    return data


def _write_temp(data: bytes, ext: str) -> Path:
    handle, name = tempfile.mkstemp(prefix="sveta-upload-", suffix=f".{ext}")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    return Path(name)


def _safe_name(filename: str | None) -> str:
    """The client's file name for messages and labels: no folders, printable, short."""
    base = Path(filename or "").name
    cleaned = re.sub(r"[^\w .()+-]", "_", base)[:120].strip()
    return cleaned or "uploaded photo"


def label(photo: UploadedPhoto) -> dict[str, Any]:
    """What a response says about the photo it answered."""
    return {"name": photo.name, "format": photo.format, "size": [photo.width, photo.height]}
