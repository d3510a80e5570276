"""Reading a JSON document a client sent, so that no input can make it fail with anything but a clear 422.

`json.loads` alone lets through what breaks later: a lone surrogate ("\\ud800") or a NUL ("\\u0000") that no
database can store, a number of thousands of digits (ValueError past 4,300, and slow below), `NaN`/`1e999` (not
JSON to PostgreSQL), and nesting deep enough for a RecursionError here or in the validation after. Each is refused
here, naming where.
"""

from __future__ import annotations

import json
import math
from typing import Any

from shared.domain.errors import ValidationFailed

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 64


class _Refused(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number has more than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number has more than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value")


def parse_json(raw: bytes | str, field: str = "body") -> Any:
    """The document in ``raw``; ValidationFailed (422, naming ``field`` or the place inside it) otherwise."""
    try:
        value = json.loads(raw, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant)
    except _Refused as exc:
        raise ValidationFailed(f"{field}: {exc}", field=field) from None
    except RecursionError:
        raise ValidationFailed(f"{field}: JSON nested deeper than {MAX_DEPTH} levels", field=field) from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{field} is not valid JSON: {exc}", field=field) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed(f"{field} is not valid JSON: {exc}", field=field) from None
    problem = check_document(value)
    if problem is not None:
        where, message = problem
        name = where if field == "body" and where else (f"{field}.{where}" if where else field)
        raise ValidationFailed(f"{name}: {message}", field=name)
    return value


def check_document(value: Any) -> tuple[str, str] | None:
    """(where, what) for the first place ``value`` nests too deep or holds a string that is not Unicode text."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return where, f"contains {problem}"
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_DEPTH:
            return where, f"is nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))
            continue
        for key, v in item.items():
            name = f"{where}.{key}" if where else str(key)
            problem = _text_problem(key)
            if problem:
                return where, f"has a key that contains {problem}"
            stack.append((v, name, depth + 1))
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character (\\u0000), which cannot be stored"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (such as \\ud800), which is not valid Unicode text"
    return None
