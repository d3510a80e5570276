"""Building a table row must not inspect its default factories' signatures: SQLModel builds rows through
pydantic's `FieldInfo.get_default`, which inspects the factory on every call, and for builtins such as `list`
that parses a text signature (most of a row's construction time, on every job posted and event written)."""

from __future__ import annotations

import inspect

import pytest
from sqlmodel import SQLModel

from shared import tables  # (importing it registers every table)

TABLES = sorted(
    (m.class_ for m in SQLModel._sa_registry.mappers if getattr(m.class_, "__table__", None) is not None),
    key=lambda cls: cls.__name__,
)


def test_every_table_is_checked() -> None:
    assert {"Job", "JobTurn", "Event", "Batch", "Artifact"} <= {cls.__name__ for cls in TABLES}


@pytest.mark.parametrize("table", TABLES, ids=lambda cls: cls.__name__)
def test_default_factories_carry_their_signature(table: type[SQLModel]) -> None:
    factories = {name: f.default_factory for name, f in table.model_fields.items() if f.default_factory is not None}
    for name, factory in factories.items():
        assert getattr(factory, "__signature__", None) == inspect.Signature(), f"{table.__name__}.{name}"


def test_rows_get_fresh_defaults_without_parsing_a_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    def parsed(*args: object, **kwargs: object) -> None:
        raise AssertionError("a default factory's signature was parsed")

    monkeypatch.setattr(inspect, "_signature_fromstr", parsed)
    first = tables.JobTurn(job_id="j", seq=0, kind="step", instruction="x")
    second = tables.JobTurn(job_id="j", seq=1, kind="step", instruction="y")
    first.assets.append("a")
    assert second.assets == [] and second.draft is None and second.created_at is not None
    assert tables.Job(id="j", tenant_id="t", prompt="x").meta == {}
