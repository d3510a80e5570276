"""Column helpers shared by the table models: aware timestamps and portable JSON."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from shared.timeutil import utcnow

# JSONB on PostgreSQL, JSON text on SQLite.
JsonType = JSON().with_variant(JSONB(), "postgresql")
# For nullable columns: Python None is SQL NULL (not the JSON literal null), so `IS NULL` finds it.
JsonNullableType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _factory(make: Callable[[], Any]) -> Callable[[], Any]:
    """``make`` as a default factory whose signature is known in advance. SQLModel builds a table row through
    pydantic's `FieldInfo.get_default`, which inspects the factory's signature on every call, and for a builtin
    such as `list` or `dict` that means parsing its text signature (tokenize, compile) only to fail: about 80% of
    the time to build a row (0.8 ms of a JobTurn's 1 ms), paid for every job posted and every event written."""

    def factory() -> Any:
        return make()

    factory.__signature__ = inspect.Signature()  # type: ignore[attr-defined]
    return factory


_NOW = _factory(utcnow)


def ts(*, nullable: bool = True, index: bool = False, now: bool = False) -> Any:
    """An aware timestamp column; ``now`` gives it the creation time as default."""
    kwargs: dict[str, Any] = {"default_factory": _NOW} if now else {"default": None}
    return Field(sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index), **kwargs)


def enum_col(kind: type[StrEnum], default: StrEnum | None, *, length: int = 16, nullable: bool = False) -> Any:
    """A column typed by its str Enum: VARCHAR in the database (no native enum, no constraint, so adding a value
    needs no migration), the Enum member in Python."""
    column_type = SAEnum(kind, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])
    return Field(default=default, sa_column=Column(column_type, nullable=nullable, default=default))


def json_col(default_factory: Any = dict, *, name: str | None = None, nullable: bool = False) -> Any:
    kind = JsonNullableType if nullable else JsonType
    col = Column(name, kind, nullable=nullable) if name else Column(kind, nullable=nullable)
    return Field(default_factory=_factory(default_factory), sa_column=col)


def aware(value: datetime | None) -> datetime | None:
    from shared.timeutil import as_utc

    return as_utc(value)
