"""A streaming multipart/form-data reader: file parts go to disk chunk by chunk and are checked while they arrive.

Starlette's own form parser reads the whole body before a handler can look at it, so a 2 GB upload to a 20 MB
profile would be read in full before being refused. Here each file part's limit and name are checked as soon as
its headers arrive and on every chunk, and the request is refused at the first byte over the limit.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from shared.domain.errors import TooLarge, ValidationFailed

# (field name, filename) -> the byte limit for that part; may raise ValidationFailed to refuse the part.
LimitFor = Callable[[str, str], int]


@dataclass
class FilePart:
    field: str
    filename: str
    path: Path
    size: int = 0
    content_type: str = "application/octet-stream"


@dataclass
class FormData:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)

    def cleanup(self) -> None:
        for part in self.files:
            part.path.unlink(missing_ok=True)


@dataclass
class _Current:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    file: FilePart | None = None
    handle: IO[bytes] | None = None
    limit: int = 0
    text: bytearray = field(default_factory=bytearray)


class StreamingForm:
    """Parse ``request``'s body as it streams in. Fields are small strings (``field_limit`` bytes each)."""

    def __init__(self, directory: Path, limit_for: LimitFor, *, field_limit: int = 256 * 1024) -> None:
        self.directory = directory
        self.limit_for = limit_for
        self.field_limit = field_limit
        self.form = FormData()
        self._cur = _Current()
        self._header_field = bytearray()
        self._header_value = bytearray()

    async def read(self, request: Request) -> FormData:
        ctype, params = parse_options_header(request.headers.get("content-type"))
        if ctype != b"multipart/form-data" or b"boundary" not in params:
            raise ValidationFailed("expected a multipart/form-data body with a boundary", field="Content-Type")
        self.directory.mkdir(parents=True, exist_ok=True)
        parser = MultipartParser(params[b"boundary"], self._callbacks())
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except BaseException:
            self._close_current()
            self.form.cleanup()
            raise
        return self.form

    def _callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._cur = _Current()

    def _header_end(self) -> None:
        self._cur.headers[self._header_field.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, opts = parse_options_header(self._cur.headers.get("content-disposition", ""))
        self._cur.name = opts.get(b"name", b"").decode("utf-8", "replace")
        filename = opts.get(b"filename")
        if filename is None:
            return
        name = os.path.basename(filename.decode("utf-8", "replace").replace("\\", "/")) or "upload"
        self._cur.limit = self.limit_for(self._cur.name, name)
        fd, path = tempfile.mkstemp(dir=self.directory, suffix="-" + name[-80:])
        self._cur.handle = os.fdopen(fd, "wb")
        ctype = self._cur.headers.get("content-type", "application/octet-stream")
        self._cur.file = FilePart(field=self._cur.name, filename=name, path=Path(path), content_type=ctype)
        self.form.files.append(self._cur.file)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        cur = self._cur
        if cur.file is None:
            if len(cur.text) + (end - start) > self.field_limit:
                raise TooLarge(f"form field {cur.name!r} is larger than {self.field_limit} bytes", field=cur.name)
            cur.text.extend(data[start:end])
            return
        cur.file.size += end - start
        if cur.file.size > cur.limit:
            raise TooLarge(
                f"file {cur.file.filename!r} is larger than the limit of {cur.limit // (1024 * 1024)} MB",
                field=cur.name,
            )
        assert cur.handle is not None
        cur.handle.write(data[start:end])

    def _part_end(self) -> None:
        if self._cur.file is None:
            try:
                self.form.fields[self._cur.name] = self._cur.text.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationFailed(f"form field {self._cur.name!r} is not UTF-8", field=self._cur.name) from None
        self._close_current()

    def _close_current(self) -> None:
        if self._cur.handle is not None:
            self._cur.handle.close()
            self._cur.handle = None
