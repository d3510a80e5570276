"""`POST /v1/jobs` answers with the job as written, read in the writing transaction: the view equals what a read
gives right after, and the request costs a fixed handful of statements whatever the tenant's backlog."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from shared.db import get_engine
from shared.db.engine import reader_engine
from tests.api.helpers import cancel_open, hold, no_dispatch  # noqa: F401
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("no_dispatch")
BODY = {"prompt": "A lighthouse at dusk", "profile": "free-kling-ai-video-generation"}


@pytest.fixture()
def tenant_with_credits(api, sim) -> Iterator[stack.Tenant]:
    tenant = stack.new_tenant("create-cost")
    stack.give_credits(api, tenant, sim, 1_000_000)
    yield tenant
    cancel_open(tenant.name)


@pytest.fixture()
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.split(None, 1)[0].upper())

    engines = {id(e): e for e in (get_engine(), reader_engine())}.values()
    for engine in engines:
        event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", listen)


def test_the_created_view_is_what_a_read_gives_after(api, tenant_with_credits) -> None:
    headers = tenant_with_credits.headers
    first = api.post("/v1/jobs", json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    hold(first.json()["id"])
    second = api.post("/v1/jobs", json=BODY, headers={**headers, "Idempotency-Key": "create-cost-1"})
    assert second.status_code == 201, second.text
    hold(second.json()["id"])
    for made in (first.json(), second.json()):
        read = api.get(f"/v1/jobs/{made['id']}", headers=headers)
        assert read.json() == made
    assert (first.json()["queue_position"], second.json()["queue_position"]) == (1, 2)
    replay = api.post("/v1/jobs", json=BODY, headers={**headers, "Idempotency-Key": "create-cost-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == api.get(f"/v1/jobs/{second.json()['id']}", headers=headers).json()


def test_a_post_costs_the_same_statements_whatever_the_backlog(api, tenant_with_credits, statements) -> None:
    def post() -> list[str]:
        statements.clear()
        resp = api.post("/v1/jobs", json=BODY, headers=tenant_with_credits.headers)
        assert resp.status_code == 201, resp.text
        made = list(statements)
        hold(resp.json()["id"])
        return made

    first = post()
    for _ in range(5):
        post()
    assert post() == first
    # the key with its tenant, credit admission, the job, its turns, its queue position (was nine: the key and
    # the tenant apart, and the view read back in a second transaction)
    assert first == ["SELECT", "SELECT", "INSERT", "INSERT", "SELECT"]
