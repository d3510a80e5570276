"""HTTP byte ranges (RFC 9110 §14) for serving stored files: one range per request, as download tools ask."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(ValueError):
    """The range starts past the end of the file: 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks for, or None to send the whole file (no header, several ranges, or a header
    that is not a byte range: RFC 9110 lets a server ignore those). Raises `Unsatisfiable` for a range past the
    end."""
    match = _RANGE.match((header or "").replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise Unsatisfiable(header)
        return ByteRange(max(size - count, 0), size - 1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # not valid: ignored
    if start >= size:
        raise Unsatisfiable(header)
    return ByteRange(start, end)
