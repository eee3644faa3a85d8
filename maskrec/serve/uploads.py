"""Reading a request's images: a multipart upload or the raw body, never more than the upload limit.

A declared Content-Length over the limit is refused before a byte is read; a body sent without one
(chunked) is counted as it arrives and refused at the byte that crosses it (``TooLarge``: 413). Each
file is spooled (memory up to ``SPOOL_BYTES``, then a temporary file), so what a request holds in
memory does not follow its size; the decoder reads the spooled file on a worker thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import IO

from starlette.datastructures import UploadFile
from starlette.requests import Request

from maskrec.serve.settings import SPOOL_BYTES


class TooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"upload too large: at most {limit:,} bytes ({limit / (1 << 20):g} MB)")


class NoImage(Exception):
    """A request without the image(s) it should carry; the message says what to send."""


@dataclass
class Upload:
    name: str | None  # the file name a multipart upload gave, None for a raw body
    file: IO[bytes]   # seekable, at 0

    def close(self) -> None:
        self.file.close()


def _limited(request: Request, limit: int) -> Request:
    """``request`` whose body reading raises TooLarge past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    seen = 0

    async def receive():
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(limit)
        return message
    return Request(request.scope, receive)


def _multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "multipart/form-data"


async def _files(request: Request, max_files: int) -> list[Upload]:
    form = await request.form(max_files=max_files, max_fields=16)
    ups = []
    for _, v in form.multi_items():
        if isinstance(v, UploadFile):
            v.file.seek(0)
            ups.append(Upload(v.filename or None, v.file))
    return ups


async def read_image(request: Request, limit: int) -> Upload:
    """One image: the one file of a multipart form, or else the raw body."""
    request = _limited(request, limit)
    if _multipart(request):
        ups = await _files(request, max_files=1)
        if not ups:
            raise NoImage("the form holds no file: send the image as a file field (e.g. -F file=@photo.jpg)")
        return ups[0]
    spool = SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        async for chunk in request.stream():
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return Upload(None, spool)


async def read_images(request: Request, limit: int, max_files: int) -> list[Upload]:
    """Every file of a multipart form (any field name; ``files`` in the docs), at most ``max_files``."""
    request = _limited(request, limit)
    if not _multipart(request):
        raise NoImage("send the face crops as multipart/form-data files (e.g. -F files=@a.jpg -F files=@b.jpg)")
    ups = await _files(request, max_files)
    if not ups:
        raise NoImage("the form holds no file: send each face crop as a file field named files")
    return ups
