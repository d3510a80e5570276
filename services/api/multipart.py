"""A streaming multipart/form-data reader: file parts go to disk chunk by chunk and are checked while they arrive.

Starlette's own form parser reads the whole body before a handler can look at it, so a 2 GB upload to a 20 MB
profile would be read in full before being refused. Here each file part's limit and name are checked as soon as
its headers arrive and on every chunk, and the request is refused at the first byte over the limit. The number of
parts and the size of each part's headers are capped too, and a body the parser cannot read is a 422.

A file keeps the name its client gave it (it is what the upstream shows in the timeline): each upload is stored as
`<directory>/up-<random>/<client file name>` (shared/uploads.py). File names come from `filename` or, per RFC 7578
and RFC 6266, from the RFC 2231 form `filename*=UTF-8''...`, which wins when both are sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from shared.domain.errors import TooLarge, ValidationFailed
from shared.settings import get_settings
from shared.uploads import new_upload_path, remove_upload

# (field name, filename) -> the byte limit for that part; may raise ValidationFailed to refuse the part.
LimitFor = Callable[[str, str], int]
MAX_HEADER_BYTES = 16 * 1024  # one part's headers, all together
MAX_FILENAME_CHARS = 120


@dataclass
class FilePart:
    field: str
    filename: str
    path: Path
    size: int = 0
    content_type: str = "application/octet-stream"

    def remove(self) -> None:
        """Delete the stored file, and its folder when it is one of ours."""
        remove_upload(self.path)


@dataclass
class FormData:
    fields: dict[str, str] = field(default_factory=dict)  # the last value sent for each field name
    values: dict[str, list[str]] = field(default_factory=dict)  # every value, in order, for repeated fields
    files: list[FilePart] = field(default_factory=list)

    def cleanup(self) -> None:
        for part in self.files:
            part.remove()


@dataclass
class _Current:
    headers: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0
    name: str = ""
    file: FilePart | None = None
    handle: IO[bytes] | None = None
    limit: int = 0
    text: bytearray = field(default_factory=bytearray)
    open: bool = False  # between the part's start and its end


def client_filename(raw: str) -> str:
    """The base name of a client's file name, checked: no control characters, no path, not empty."""
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ValidationFailed(f"file name {raw!r} contains a control character", field="files")
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        name = "upload"
    return name[-MAX_FILENAME_CHARS:]


def disposition(value: str) -> tuple[str, str | None]:
    """(field name, file name or None) from a Content-Disposition header value."""
    msg = Message()
    msg["content-disposition"] = value
    name = msg.get_param("name", header="content-disposition")
    params = msg.get_params(header="content-disposition") or []
    found = [v for k, v in params if k.lower() == "filename"]
    encoded = [v for v in found if isinstance(v, tuple)]  # filename*= (RFC 2231) wins over filename=
    filename: str | None = None
    if encoded:
        filename = collapse_rfc2231_value(encoded[0], errors="strict")
    elif found:
        filename = _utf8(collapse_rfc2231_value(found[0]))
    return _utf8(collapse_rfc2231_value(name)) if name is not None else "", filename


def _utf8(text: str) -> str:
    """Header bytes were read as latin-1; a client that sent UTF-8 gets its characters back."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


class StreamingForm:
    """Parse ``request``'s body as it streams in. Fields are small strings (``field_limit`` bytes each)."""

    def __init__(self, directory: Path, limit_for: LimitFor, *, field_limit: int = 256 * 1024) -> None:
        self.directory = directory
        self.limit_for = limit_for
        self.field_limit = field_limit
        self.max_parts = get_settings().max_form_parts
        self.form = FormData()
        self.parts = 0
        self._cur = _Current()
        self._header_field = bytearray()
        self._header_value = bytearray()

    async def read(self, request: Request) -> FormData:
        ctype, params = parse_options_header(request.headers.get("content-type"))
        if ctype != b"multipart/form-data" or not params.get(b"boundary"):
            raise ValidationFailed("expected a multipart/form-data body with a boundary", field="Content-Type")
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            parser = MultipartParser(params[b"boundary"], self._callbacks())
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
            if self._cur.open:
                raise ValidationFailed("the multipart body ends inside a part", field="body")
        except FormParserError as exc:
            self._abandon()
            raise ValidationFailed(f"the multipart body is malformed: {exc}", field="body") from None
        except BaseException:
            self._abandon()
            raise
        return self.form

    def _abandon(self) -> None:
        self._close_current()
        self.form.cleanup()

    def _callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_bytes(self._header_field, d[s:e]),
            "on_header_value": lambda d, s, e: self._header_bytes(self._header_value, d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise TooLarge(f"the form has more than the limit of {self.max_parts} parts", field="body")
        self._cur = _Current(open=True)

    def _header_bytes(self, into: bytearray, data: bytes) -> None:
        self._cur.header_bytes += len(data)
        if self._cur.header_bytes > MAX_HEADER_BYTES:
            raise TooLarge(f"a form part's headers are larger than the limit of {MAX_HEADER_BYTES} bytes", field="body")
        into.extend(data)

    def _header_end(self) -> None:
        self._cur.headers[self._header_field.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        name, filename = disposition(self._cur.headers.get("content-disposition", ""))
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValidationFailed(f"form field name {name!r} contains a control character", field="body")
        self._cur.name = name
        if filename is None:
            return
        safe = client_filename(filename)
        self._cur.limit = self.limit_for(name, safe)
        path = new_upload_path(self.directory, safe)
        self._cur.handle = open(path, "xb")  # noqa: SIM115 (closed in _part_end or on failure)
        ctype = self._cur.headers.get("content-type", "application/octet-stream")
        self._cur.file = FilePart(field=name, filename=safe, path=path, content_type=ctype)
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
                value = self._cur.text.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationFailed(f"form field {self._cur.name!r} is not UTF-8", field=self._cur.name) from None
            self.form.fields[self._cur.name] = value
            self.form.values.setdefault(self._cur.name, []).append(value)
        self._cur.open = False
        self._close_current()

    def _close_current(self) -> None:
        if self._cur.handle is not None:
            self._cur.handle.close()
            self._cur.handle = None
