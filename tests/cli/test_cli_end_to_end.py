"""The CLI on the whole stack: submit and download a video; a batch followed to its end; the watcher killed
mid-watch (SIGINT and SIGKILL) while the batch keeps running, then reattached with `batch status --wait`."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.utils.stack import give_credits

pytestmark = pytest.mark.slow


@pytest.fixture()
def funded(stack_ready, tenant, sim) -> None:
    give_credits(stack_ready, tenant, sim, 1_000_000)


def rows_csv(path: Path, count: int, bad: int = 0) -> Path:
    lines = ["prompt,external_id"] + [f"A fox number {i},e{i}" for i in range(count)] + [f",bad{i}" for i in range(bad)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_until(proc, needle: str, timeout: float = 60) -> str:
    """Read the child's stdout line by line until ``needle`` shows up (the CLI flushes every line)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if needle in line:
            return line
    pytest.fail(f"{needle!r} not printed; got {seen!r}")


def test_submit_wait_and_download(cli: Cli, funded: None, tmp_path: Path) -> None:
    image = tmp_path / "still.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048)
    out = tmp_path / "video.mp4"
    result = cli.run("submit", "A 5 second clip of this still", "--asset", str(image), "--wait", "--out", str(out))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "succeeded http://127.0.0.1:" in result.stdout
    assert out.is_file() and out.stat().st_size > 0
    assert f"saved {out.stat().st_size} bytes to {out}" in result.stdout
    assert not (tmp_path / "video.mp4.part").exists()


def test_batch_submit_wait_succeeds_and_results_are_fetched(cli: Cli, funded: None, tmp_path: Path) -> None:
    result = cli.run("batch", "submit", str(rows_csv(tmp_path / "jobs.csv", 6)), "--wait", "--max-in-flight", "3")
    assert result.returncode == 0, result.stderr + result.stdout
    batch_id = result.stdout.split()[1]
    assert f"batch {batch_id} completed: 6 succeeded, 0 failed, 0 canceled" in result.stdout
    out = tmp_path / "results.csv"
    assert cli.run("batch", "results", batch_id, "-o", str(out)).returncode == 0
    lines = out.read_text().splitlines()[1:]
    assert [line.split(",")[:3] for line in lines] == [[str(i + 2), f"e{i}", "succeeded"] for i in range(6)]


def test_skipped_rows_make_exit_code_one(cli: Cli, funded: None, tmp_path: Path) -> None:
    path = rows_csv(tmp_path / "jobs.csv", 2, bad=1)
    result = cli.run("batch", "submit", str(path), "--on-error", "skip", "--wait")
    assert result.returncode == 1, result.stderr + result.stdout
    assert "accepted: 2 jobs, 1 rows skipped" in result.stdout
    assert "must not be blank" in result.stdout  # the skipped rows' table
    assert "2 succeeded, 0 failed, 0 canceled, 0 running, 0 queued, 1 skipped" in result.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_watcher_leaves_the_batch_running_and_reattaches(
    cli: Cli, funded: None, tmp_path: Path, sig: signal.Signals
) -> None:
    path = rows_csv(tmp_path / "jobs.csv", 12)
    watcher = cli.start("batch", "submit", str(path), "--wait", "--max-in-flight", "1")  # one job at a time
    batch_id = read_until(watcher, "accepted").split()[1]
    time.sleep(0.5)  # mid-watch
    watcher.send_signal(sig)
    out, err = watcher.communicate(timeout=30)
    if sig == signal.SIGINT:
        assert watcher.returncode == 130, err
        assert f"Reattach with: reelmill batch status {batch_id} --wait" in out
    else:
        assert watcher.returncode == -signal.SIGKILL
    now = cli.run("batch", "status", batch_id)
    assert now.returncode == 0
    assert now.stdout.startswith(f"batch {batch_id} running:"), now.stdout  # watching stopped, the batch did not
    reattached = cli.run("batch", "status", batch_id, "--wait")
    assert reattached.returncode == 0, reattached.stderr + reattached.stdout
    assert f"batch {batch_id} completed: 12 succeeded" in reattached.stdout
