"""Public ids: a type prefix and 26 Crockford base32 characters that sort by creation time (ULID layout)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """``<prefix>_<10 chars of ms timestamp><16 random chars>``; lexicographic order is creation order."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_b32(ms, 10)}{_b32(rand, 16)}".lower()


def is_id(value: str, prefix: str) -> bool:
    """Whether ``value`` has the shape of a ``prefix`` id: what a client sends is checked before any query uses it
    (a NUL or a megabyte of text is "not found", never a database error)."""
    body = value[len(prefix) + 1 :]
    return (
        len(value) == len(prefix) + 27
        and value.startswith(prefix + "_")
        and body.isascii()
        and body.isalnum()
        and body == body.lower()
    )
