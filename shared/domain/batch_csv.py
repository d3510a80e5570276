"""Batch CSV files: the streaming reader/validator for an uploaded batch, and the cells of `results.csv`.

The input is read once, line by line, from the file on disk: each physical line is decoded on its own (UTF-8 never
puts a newline byte inside a character), the `csv` module joins quoted newlines into one record, and the record
remembers the line it started on. Every row is checked with `JobSpec`, the rules of a JSON job, so a row means
exactly what the same JSON job would. Rows come out one at a time (`checked_rows`), so no caller needs to hold
them all; DNS answers are cached per upload, so 100,000 rows with asset URLs cost one lookup per host.
"""

from __future__ import annotations

import csv
import marshal
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from shared.domain.errors import TooLarge
from shared.domain.job_input import JobSpec
from shared.settings import Settings, get_settings
from shared.urlguard import Resolver, scoped_resolver, system_resolver

COLUMNS = ("prompt", "profile", "asset_urls", "format", "quality", "language", "external_id")
META_PREFIX = "meta_"
ASSET_SPLIT = re.compile(r"[\s;]+")
EXTERNAL_ID_MAX = 200
MAX_REPORTED_ERRORS = 1000  # a 422 lists this many errors at most (and says how many there were)
BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# where a JobSpec field's error is shown: the CSV column it came from
SPEC_COLUMNS = {"prompt": "prompt", "profile": "profile", "language": "language", "assets": "asset_urls"}
OUTPUT_COLUMNS = {"format": "format", "quality": "quality"}


CellError = tuple[str | None, str]  # (column, message)


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None
    message: str

    def public(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}


@dataclass
class Record:
    line: int  # the physical line the record starts on (the header is line 1)
    cells: list[str]
    problem: str | None = None  # a byte-level problem on one of its lines (not UTF-8, a NUL)


@dataclass
class Scan:
    """What one pass over the file found. Errors beyond MAX_REPORTED_ERRORS are counted, not kept."""

    rows: int = 0
    good: int = 0
    bad_rows: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    needs: Counter[str] = field(default_factory=Counter)  # good rows (one SSE turn each) per profile
    fatal: bool = False  # a file-level problem (header, encoding of the header, CSV syntax): no row can run

    def add(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


class FileProblem(Exception):
    """A problem that stops the reading: the file as a whole cannot be used."""

    def __init__(self, error: RowError) -> None:
        super().__init__(error.message)
        self.error = error


# ---- physical lines and records --------------------------------------------------------------------------


class _Lines:
    """Decodes the file's lines one by one; notes lines that are not UTF-8 or hold a NUL."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.number = 0
        self.problems: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for raw in self.handle:
            self.number += 1
            if self.number == 1:
                raw = self._first(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", "replace")
                self.problems.append(
                    f"line {self.number} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}); "
                    "save the file as 'CSV UTF-8'"
                )
            if "\x00" in text:
                text = text.replace("\x00", "")
                self.problems.append(f"line {self.number} contains a NUL byte")
            yield text

    def _first(self, raw: bytes) -> bytes:
        if raw.startswith(UTF16_BOMS):
            raise FileProblem(RowError(1, None, "the file is UTF-16, not UTF-8; save it as 'CSV UTF-8'"))
        return raw.removeprefix(BOM)


def read_records(handle: IO[bytes]) -> Iterator[Record]:
    """Yield the file's records (the header first) with the line each starts on; blank lines are skipped."""
    lines = _Lines(handle)
    reader = csv.reader(lines, strict=True)
    consumed = 0
    while True:
        start = consumed + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileProblem(RowError(start, None, _csv_message(str(exc), start))) from None
        consumed = reader.line_num
        problem = "; ".join(lines.problems) if lines.problems else None
        lines.problems.clear()
        if not any(cell.strip() for cell in cells) and problem is None:
            continue  # blank lines and rows of empty cells (spreadsheets write them) carry no job
        yield Record(line=start, cells=cells, problem=problem)


def _csv_message(message: str, line: int) -> str:
    if "unexpected end of data" in message:
        return f"a quoted field that starts on line {line} or later is never closed"
    return f"the CSV is malformed: {message}"


# ---- the header ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    names: tuple[str, ...]  # per position: a COLUMNS name, or "meta_<key>" as written (key case kept)
    index: dict[str, int]  # COLUMNS name -> position
    meta: tuple[tuple[int, str], ...]  # (position, metadata key)

    @classmethod
    def of(cls, names: list[str]) -> Header:
        index = {name: i for i, name in enumerate(names) if name in COLUMNS}
        meta = tuple((i, name[len(META_PREFIX) :]) for i, name in enumerate(names) if name not in COLUMNS)
        return cls(tuple(names), index, meta)

    @property
    def meta_columns(self) -> list[str]:
        return [self.names[i] for i, _ in self.meta]


def parse_header(record: Record) -> Header:
    """Check the header row; raise FileProblem naming every bad column."""
    if record.problem:
        raise FileProblem(RowError(record.line, None, record.problem))
    names: list[str] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    for index, raw in enumerate(record.cells, start=1):
        name = raw.strip()
        low = name.lower()
        if not name:
            problems.append(f"column {index} has no name")
        elif low in seen:
            problems.append(f"column {name!r} appears twice (columns {seen[low]} and {index})")
        elif low not in COLUMNS and not (low.startswith(META_PREFIX) and len(low) > len(META_PREFIX)):
            problems.append(f"unknown column {name!r}")
        seen.setdefault(low, index)
        names.append(low if low in COLUMNS else META_PREFIX + name[len(META_PREFIX) :])
    if not any(n in COLUMNS or n.startswith(META_PREFIX) for n in seen):
        raise FileProblem(RowError(1, None, f"the first line must be a header naming the columns ({_known()})"))
    if "prompt" not in seen:
        problems.append("the required column 'prompt' is missing")
    if problems:
        raise FileProblem(RowError(1, None, "; ".join(problems) + f" (known columns: {_known()})"))
    return Header.of(names)


def _known() -> str:
    return ", ".join((*COLUMNS, "meta_<name>"))


# ---- one row ---------------------------------------------------------------------------------------------


@dataclass
class CheckedRow:
    line: int
    external_id: str | None = None
    spec: JobSpec | None = None
    errors: list[tuple[str | None, str]] = field(default_factory=list)


def check_row(header: Header, record: Record) -> CheckedRow:
    """Validate one data record as a job."""
    row = CheckedRow(line=record.line)
    if record.problem:
        row.errors.append((None, record.problem))
        return row
    cells = record.cells
    if len(cells) != len(header.names):
        row.errors.append((None, f"the row has {len(cells)} cells; the header has {len(header.names)} columns"))
        return row
    payload = _payload(header, cells)
    row.external_id = _external_id(header, cells, row)
    try:
        row.spec = JobSpec.model_validate(payload)
    except ValidationError as exc:
        row.errors.extend(_spec_errors(exc, payload, header.meta_columns))
    return row


def _payload(header: Header, cells: list[str]) -> dict[str, Any]:
    """The JSON job this row stands for; empty cells leave the JSON default."""
    index = header.index
    payload: dict[str, Any] = {"prompt": cells[index["prompt"]]}
    for name in ("profile", "language"):
        if name in index and (value := cells[index[name]].strip()):
            payload[name] = value
    if "asset_urls" in index:
        payload["assets"] = [u for u in ASSET_SPLIT.split(cells[index["asset_urls"]].strip()) if u]
    output = {name: value for name in OUTPUT_COLUMNS if name in index and (value := cells[index[name]].strip())}
    if output:
        payload["output"] = output
    metadata = {key: cells[i] for i, key in header.meta if cells[i].strip()}
    if metadata:
        payload["metadata"] = metadata
    return payload


def _external_id(header: Header, cells: list[str], row: CheckedRow) -> str | None:
    if "external_id" not in header.index:
        return None
    value = cells[header.index["external_id"]].strip()
    if len(value) > EXTERNAL_ID_MAX:
        row.errors.append(("external_id", f"is longer than {EXTERNAL_ID_MAX} characters"))
        return None
    return value or None


def _spec_errors(exc: ValidationError, payload: dict[str, Any], meta_columns: list[str]) -> list[CellError]:
    found: list[CellError] = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        message = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
        if err.get("type") == "literal_error":
            message = f"{err.get('input')!r} is not allowed; use {err.get('ctx', {}).get('expected', 'another value')}"
        if not loc:
            found.append(_model_error(message, payload))
        elif loc[0] == "output" and len(loc) > 1:
            found.append((OUTPUT_COLUMNS.get(str(loc[1]), "format"), message))
        elif loc[0] == "metadata":
            found.append((meta_columns[0] if len(meta_columns) == 1 else "meta_*", f"metadata {message}"))
        else:
            found.append((SPEC_COLUMNS.get(str(loc[0]), str(loc[0])), message))
    return found


ASSET_ERROR = re.compile(r"^assets\[(\d+)\]: (.*)$", re.S)


def _model_error(message: str, payload: dict[str, Any]) -> tuple[str | None, str]:
    """JobSpec's whole-object rules say "assets[i]: reason" or "assets: ..."; name the URL instead."""
    match = ASSET_ERROR.match(message)
    if match:
        index = int(match.group(1))
        url = payload.get("assets", [])[index]
        return "asset_urls", f"URL {index + 1} ({url}): {match.group(2)}"
    if message.startswith("assets: "):
        return "asset_urls", message.removeprefix("assets: ")
    return None, message


# ---- the whole file ------------------------------------------------------------------------------------


def check_size(path: Path, settings: Settings | None = None) -> None:
    limit = (settings or get_settings()).batch_max_bytes
    if os.path.getsize(path) > limit:
        raise TooLarge(f"the file is larger than the limit of {limit} bytes", field="file")


def checked_rows(path: Path, scan: Scan, settings: Settings | None = None) -> Iterator[CheckedRow]:
    """Yield every data row of the CSV at ``path``, checked, in input order, while filling ``scan``.

    Raises TooLarge over the byte or row limit; a file-level problem sets ``scan.fatal`` and ends the rows.
    Nothing is kept from one row to the next but the set of external ids seen."""
    settings = settings or get_settings()
    check_size(path, settings)
    token = scoped_resolver.set(CachingResolver(system_resolver))
    try:
        with path.open("rb") as handle:
            yield from _check_records(read_records(handle), scan, settings.batch_max_rows)
    except FileProblem as problem:
        scan.fatal = True
        scan.add(problem.error)
    finally:
        scoped_resolver.reset(token)


def scan_file(path: Path, settings: Settings | None = None) -> Scan:
    """Check the whole file and return what was found (no rows are kept)."""
    scan = Scan()
    for _ in checked_rows(path, scan, settings):
        pass
    return scan


class CachingResolver:
    """DNS answers for one upload, per (host, port), failures included: rows repeat a few hosts."""

    def __init__(self, resolve: Resolver, max_hosts: int = 10_000) -> None:
        self.resolve = resolve
        self.max_hosts = max_hosts
        self.answers: dict[tuple[str, int], list[str] | OSError] = {}

    def __call__(self, host: str, port: int) -> list[str]:
        key = (host, port)
        answer = self.answers.get(key)
        if answer is None:
            try:
                answer = self.resolve(host, port)
            except OSError as exc:
                answer = exc
            if len(self.answers) < self.max_hosts:
                self.answers[key] = answer
        if isinstance(answer, OSError):
            raise type(answer)(*answer.args)  # a fresh one: re-raising one object grows its traceback
        return list(answer)


def _check_records(records: Iterator[Record], scan: Scan, max_rows: int) -> Iterator[CheckedRow]:
    first = next(records, None)
    if first is None:
        raise FileProblem(RowError(1, None, "the file is empty; the first line must be a header naming the columns"))
    header = parse_header(first)
    seen_ids: dict[str, int] = {}  # external_id -> the line it first appeared on
    for record in records:
        scan.rows += 1
        if scan.rows > max_rows:
            raise TooLarge(f"the file has more than the limit of {max_rows} rows", field="file")
        row = check_row(header, record)
        _check_duplicate(row, seen_ids)
        for column, message in row.errors:
            scan.add(RowError(row.line, column, message))
        if row.errors:
            scan.bad_rows += 1
        else:
            scan.good += 1
            scan.needs[row.spec.profile if row.spec else ""] += 1
        yield row
    if scan.rows == 0:
        raise FileProblem(RowError(1, None, "the file has a header but no rows"))


def _check_duplicate(row: CheckedRow, seen_ids: dict[str, int]) -> None:
    if row.external_id is None:
        return
    first = seen_ids.setdefault(row.external_id, row.line)
    if first != row.line:
        row.errors.append(("external_id", f"duplicate external_id {row.external_id!r} (first on line {first})"))


class ErrorSpool:
    """Bad rows (line, external_id, errors) on disk, for `on_error=skip`: there may be 100,000 of them.
    Written with `marshal` (plain values, read back by this process; a tenth of JSON's cost)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None

    def __enter__(self) -> ErrorSpool:
        self.handle = self.path.open("wb")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()

    def write(self, row: CheckedRow) -> None:
        assert self.handle is not None
        marshal.dump((row.line, row.external_id, row.errors), self.handle)

    def read(self) -> Iterator[tuple[int, str | None, list[CellError]]]:
        with self.path.open("rb") as handle:
            while True:
                try:
                    line, external_id, errors = marshal.load(handle)
                except EOFError:
                    return
                yield line, external_id, [(col, msg) for col, msg in errors]


# ---- results.csv ---------------------------------------------------------------------------------------

RESULT_COLUMNS = ("line", "external_id", "status", "output_url", "error", "artifact_url", "artifact_sha256")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ (or tab/CR) gets a leading '."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
