"""`reelmill tenants` as real subprocesses on the laptop default (SQLite in a data dir, found as `reelmill keys`
finds it): set and clear a weight and a cap, refuse bad values naming them, list with jobs counted."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session

from shared.db.engine import make_engine
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row
from shared.domain.tenant_shares import find_tenant
from shared.tables import JobStatus, Stage
from tests.cli.test_keys import data_dir, reelmill  # noqa: F401 (the fixture)


def _listed(tmp_path: Path, env: dict[str, str]) -> dict[str, dict]:
    shown = reelmill(tmp_path, "tenants", "list", "--json", **env)
    assert shown.returncode == 0, shown.stderr
    return {row["tenant"]: row for row in json.loads(shown.stdout)}


def _add_jobs(data: Path, tenant: str, queued: int, started: int) -> None:
    engine = make_engine(f"sqlite:///{data / 'reelmill.db'}")
    try:
        with Session(engine) as session:
            tenant_id = find_tenant(session, tenant).id
            for n in range(queued + started):
                job = new_job_row(tenant_id, JobSpec(prompt="x"))
                if n >= queued:
                    job.stage, job.status = Stage.message, JobStatus.processing
                session.add(job)
            session.commit()
    finally:
        engine.dispose()


def test_set_list_and_clear(tmp_path: Path, data_dir: Path) -> None:  # noqa: F811
    env = {"REELMILL_DATA_DIR": str(data_dir)}
    for name in ("acme", "globex"):
        assert reelmill(tmp_path, "keys", "create", "--tenant", name, **env).returncode == 0
    _add_jobs(data_dir, "acme", queued=3, started=2)

    table = reelmill(tmp_path, "tenants", "list", **env)
    assert table.returncode == 0, table.stderr
    assert f"database: sqlite:///{data_dir / 'reelmill.db'} (REELMILL_DATA_DIR)" in table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TENANT", "ID", "WEIGHT", "MAX", "IN", "FLIGHT", "QUEUED", "IN", "FLIGHT"]
    acme = next(line.split() for line in lines if line.startswith("acme "))
    assert acme[2:] == ["1", "-", "3", "2"], "weight 1, no cap, 3 queued, 2 in flight"

    assert reelmill(tmp_path, "tenants", "set-weight", "acme", "4", **env).stdout.strip() == "acme: weight 4"
    capped = reelmill(tmp_path, "tenants", "set-max-in-flight", "acme", "10", **env)
    assert capped.returncode == 0 and capped.stdout.strip() == "acme: max in flight 10"
    rows = _listed(tmp_path, env)
    assert {k: rows["acme"][k] for k in ("weight", "max_in_flight", "queued", "in_flight")} == {
        "weight": 4, "max_in_flight": 10, "queued": 3, "in_flight": 2
    }  # fmt: skip
    assert rows["globex"]["weight"] == 1 and rows["globex"]["max_in_flight"] is None
    assert rows["acme"]["id"].startswith("ten_")

    by_id = reelmill(tmp_path, "tenants", "set-weight", rows["globex"]["id"], "2", **env)
    assert by_id.returncode == 0 and by_id.stdout.strip() == "globex: weight 2", "a tenant's id works too"
    cleared = reelmill(tmp_path, "tenants", "set-max-in-flight", "acme", "none", **env)
    assert cleared.returncode == 0 and cleared.stdout.strip() == "acme: max in flight no cap"
    rows = _listed(tmp_path, env)
    assert rows["acme"]["max_in_flight"] is None and rows["acme"]["weight"] == 4 and rows["globex"]["weight"] == 2


def test_bad_values_are_refused_naming_them(tmp_path: Path, data_dir: Path) -> None:  # noqa: F811
    env = {"REELMILL_DATA_DIR": str(data_dir)}
    assert reelmill(tmp_path, "keys", "create", "--tenant", "acme", **env).returncode == 0
    refusals = {
        ("set-weight", "acme", "0"): "weight must be an integer >= 1, got 0",
        ("set-weight", "acme", "-2"): "weight must be an integer >= 1, got -2",
        ("set-weight", "acme", "heavy"): "weight must be an integer >= 1, got 'heavy'",
        ("set-weight", "acme", "10001"): "weight must be at most 10000",
        ("set-max-in-flight", "acme", "0"): "max in flight must be an integer from 1 to 1000000, or 'none'",
        ("set-max-in-flight", "acme", "lots"): "max in flight must be an integer from 1 to 1000000, or 'none'",
        ("set-weight", "nobody", "2"): "no tenant 'nobody'",
    }
    for args, message in refusals.items():
        done = reelmill(tmp_path, "tenants", *args, **env)
        assert done.returncode == 2 and f"error: {message}" in done.stderr, (args, done.stderr)
    row = _listed(tmp_path, env)["acme"]
    assert (row["weight"], row["max_in_flight"]) == (1, None), "nothing was changed by a refused command"
