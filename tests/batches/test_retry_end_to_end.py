"""A batch whose rows failed upstream, retried on the whole stack (a real worker, beat, the simulator over HTTP):
the retried rows end succeeded, under their original lines and external_ids."""

from __future__ import annotations

import pytest

from tests.batches.helpers import csv_of, post_batch
from tests.batches.test_end_to_end import results, wait_batch
from tests.utils.stack import give_credits

pytestmark = pytest.mark.slow


def test_a_batch_with_failed_rows_is_retried_to_success(stack_ready, tenant, sim) -> None:
    api = stack_ready
    give_credits(api, tenant, sim, 1_000_000)
    # the upstream refuses two exports (a terminal fault: the job fails, it is not retried in place)
    sim.fault("render_submit", "http_402", times=2)
    resp = post_batch(api, tenant, csv_of([f"A fox number {i},row-{i}" for i in range(4)]), max_in_flight="4")
    assert resp.status_code == 201, resp.text
    first = wait_batch(api, tenant, resp.json()["id"])
    assert (first["status"], first["counts"]["failed"], first["counts"]["succeeded"]) == ("completed", 2, 2), first
    before = {row[0]: row for row in results(api, tenant, first)[1:]}
    failed = sorted((line, row[1]) for line, row in before.items() if row[2] == "failed")
    assert len(failed) == 2 and all("export_blocked" in before[line][4] for line, _ in failed)
    assert [f["remaining"] for f in sim.faults()] in ([], [0])  # spent: the retry meets a healthy upstream
    sim.clear_faults()

    resp = api.post(f"/v1/batches/{first['id']}/retry", headers=tenant.headers)
    assert resp.status_code == 201, resp.text
    retry = wait_batch(api, tenant, resp.json()["id"])
    assert retry["status"] == "completed" and retry["retry_of"] == first["id"]
    assert retry["counts"]["succeeded"] == 2 and retry["total"] == 2, retry
    rows = results(api, tenant, retry)[1:]
    assert sorted((row[0], row[1]) for row in rows) == failed
    assert all(row[2] == "succeeded" and row[3] and row[4] == "" for row in rows), rows
    # the original is kept as it ended, and points at its retry
    again = api.get(f"/v1/batches/{first['id']}", headers=tenant.headers).json()
    assert again["counts"] == first["counts"] and again["retried_by"] == retry["id"]
