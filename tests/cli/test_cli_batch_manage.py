"""`reelmill batch list` and `reelmill batch retry` against a real `reelmill api` process. The batches' rows are
ended by hand (the scheduler's lease held by the test), so no worker is needed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.domain import batches
from tests.batches.helpers import finish, jobs_of, scheduler_held
from tests.cli.conftest import Cli


@pytest.fixture(autouse=True)
def _held() -> Iterator[None]:
    with scheduler_held():
        yield


def submit(cli: Cli, tmp_path: Path, rows: int) -> str:
    path = tmp_path / f"jobs-{rows}.csv"
    path.write_text("prompt,external_id\n" + "".join(f"A fox number {i},e{i}\n" for i in range(rows)))
    made = cli.run("batch", "submit", str(path))
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[1]


def test_list_shows_a_table_newest_first_with_pages_status_and_json(cli: Cli, tmp_path: Path) -> None:
    ids = [submit(cli, tmp_path, rows) for rows in (1, 2, 3)]
    canceled = httpx.post(f"{cli.url}/v1/batches/{ids[0]}/cancel", headers={"Authorization": f"Bearer {cli.key}"})
    assert canceled.status_code == 200, canceled.text

    table = cli.run("batch", "list")
    assert table.returncode == 0, table.stderr
    at = [table.stdout.index(batch_id) for batch_id in ids]
    assert at[2] < at[1] < at[0], table.stdout  # newest first
    assert "Status" in table.stdout and "Succeeded" in table.stdout
    line = next(row for row in table.stdout.splitlines() if ids[2] in row)
    assert "queued" in line and " 3 " in line  # its status and its 3 jobs

    page = cli.run("batch", "list", "--limit", "2")
    assert page.returncode == 0, page.stderr
    assert ids[2] in page.stdout and ids[1] in page.stdout and ids[0] not in page.stdout
    more = next(row for row in page.stdout.splitlines() if row.startswith("more: "))
    rest = cli.run(*more.removeprefix("more: reelmill ").split())
    assert rest.returncode == 0, rest.stderr
    assert ids[0] in rest.stdout and ids[1] not in rest.stdout and "more: " not in rest.stdout

    as_json = cli.run("batch", "list", "--status", "canceled", "--json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert [b["id"] for b in body["data"]] == [ids[0]] and body["next_cursor"] is None
    assert body["data"][0]["status"] == "canceled"

    bad = cli.run("batch", "list", "--status", "finished")
    assert bad.returncode == 2
    assert "status 'finished' is not one of queued, running, paused, completed, canceled" in bad.stderr


def test_retry_prints_the_new_batch_and_how_to_watch_it(cli: Cli, tmp_path: Path) -> None:
    batch_id = submit(cli, tmp_path, 3)
    refused = cli.run("batch", "retry", batch_id)
    assert refused.returncode == 2
    assert f"batch {batch_id} is still queued; retry it once every job has ended" in refused.stderr

    jobs = jobs_of(batch_id)
    finish([jobs[0].id], "failed")
    finish([jobs[1].id], "succeeded")
    finish([jobs[2].id], "canceled")
    batches.settle(batch_id)

    made = cli.run("batch", "retry", batch_id)
    assert made.returncode == 0, made.stderr
    first = made.stdout.splitlines()[0]
    assert first.startswith("batch bat_") and first.endswith(f"retries 2 failed or canceled rows of batch {batch_id}")
    retry_id = first.split()[1]
    assert f"watch it: reelmill batch status {retry_id} --wait" in made.stdout
    assert [(j.batch_line, j.external_id) for j in jobs_of(retry_id)] == [(2, "e0"), (4, "e2")]

    again = cli.run("batch", "retry", batch_id)
    assert again.returncode == 0, again.stderr
    assert f"batch {batch_id} was already retried as {retry_id} (2 rows)" in again.stdout

    listed = cli.run("batch", "list", "--json")
    retried = {b["id"]: b for b in json.loads(listed.stdout)["data"]}
    assert retried[retry_id]["retry_of"] == batch_id and retried[batch_id]["retried_by"] == retry_id

    unknown = cli.run("batch", "retry", "bat_00000000000000000000000000")
    assert unknown.returncode == 2 and "no batch" in unknown.stderr
