"""A multipart body streamed to disk part by part, with size and sha256 computed as the bytes arrive.

At most ``FLUSH_BYTES`` of one part is held in memory; disk writes run in a worker thread. A part of a
refused type, or past the size limit, stops being written or hashed at once, but is still counted so the
reply can say how big it was.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from shared.nemo.profiles import KAPWING, MB

FLUSH_BYTES = 1024 * 1024
FILES_FIELD = "files"


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    accepted: frozenset[str]

    @property
    def label(self) -> str:
        return f"{self.max_bytes // MB} MB"


def format_of(filename: str) -> str:
    return KAPWING.format_of(filename)  # the extension rule is the same for every profile


def safe_name(raw: str, fallback: str = "upload") -> str:
    name = PurePosixPath(raw.replace("\\", "/")).name.strip()
    return name if name and name not in {".", ".."} else fallback


@dataclass
class FilePart:
    filename: str
    fmt: str
    tmp_path: Path
    size: int = 0
    sha: Any = field(default_factory=hashlib.sha256)
    buffer: bytearray = field(default_factory=bytearray)
    refused: str | None = None  # "type" or "size"
    handle: IO[bytes] | None = None

    def write_out(self, data: bytes) -> None:
        if self.handle is None:
            self.tmp_path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.tmp_path.open("wb")
        self.handle.write(data)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class MultipartUpload:
    def __init__(self, directory: Path, limits: UploadLimits) -> None:
        self.directory = directory
        self.limits = limits
        self.parts: list[FilePart] = []
        self._current: FilePart | None = None
        self._disposition = b""
        self._header_field = b""
        self._header_value = b""

    # --- python-multipart callbacks (synchronous) ---------------------------------------------
    def _on_part_begin(self) -> None:
        self._current, self._disposition = None, b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_field.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field = self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name != FILES_FIELD or b"filename" not in options:
            return  # other fields are not files; their bytes are skipped
        filename = safe_name(options[b"filename"].decode("utf-8", "replace"))
        part = FilePart(filename, format_of(filename), self.directory / f".{secrets.token_hex(8)}.part")
        if part.fmt not in self.limits.accepted:
            part.refused = "type"
        self.parts.append(part)
        self._current = part

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current
        if part is None:
            return
        part.size += end - start
        if part.refused is None and part.size > self.limits.max_bytes:
            part.refused, part.buffer = "size", bytearray()
        if part.refused is None:
            chunk = data[start:end]
            part.sha.update(chunk)
            part.buffer += chunk

    def _on_part_end(self) -> None:
        self._current = None

    # --- driving ------------------------------------------------------------------------------
    async def consume(self, request: Request, boundary: bytes) -> None:
        """Parse the whole body (``MultipartParseError`` on a malformed one), writing files as it goes."""
        parser = MultipartParser(boundary, self._callbacks())
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                await self._flush(FLUSH_BYTES)
            parser.finalize()
            await self._flush(0)
        finally:
            for part in self.parts:
                part.close()

    def _callbacks(self) -> Any:
        return {
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
        }

    async def _flush(self, threshold: int) -> None:
        for part in self.parts:
            if part.refused is not None:
                continue
            final = threshold == 0 and part.handle is None  # an empty file still becomes a file
            if final or (part.buffer and len(part.buffer) >= threshold):
                data, part.buffer = bytes(part.buffer), bytearray()
                await anyio.to_thread.run_sync(part.write_out, data)

    def discard(self) -> None:
        for part in self.parts:
            part.close()
            part.tmp_path.unlink(missing_ok=True)


def boundary_of(content_type: str) -> bytes | None:
    kind, params = parse_options_header(content_type)
    return params.get(b"boundary") if kind == b"multipart/form-data" else None
