"""The CLI's answers to bad input and usage: exit code 2 with the API's own message (and row errors as a table);
exit code 1 when the API cannot be reached. No worker needed."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli
from tests.utils.net import free_port


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_key_is_usage(cli: Cli, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "jobs.csv", "prompt\nA fox\n")
    no_key = Cli(cli.url, None, tmp_path)
    result = no_key.run("batch", "submit", str(csv_path))
    assert result.returncode == 2
    assert "set REELMILL_API_KEY" in result.stderr


def test_wrong_key_is_usage_with_the_api_message(cli: Cli, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "jobs.csv", "prompt\nA fox\n")
    result = Cli(cli.url, "rm_live_not-a-key", tmp_path).run("batch", "submit", str(csv_path))
    assert result.returncode == 2
    assert "error:" in result.stderr and "rm_live_not-a-key" not in result.stderr + result.stdout


def test_missing_file_is_usage(cli: Cli) -> None:
    result = cli.run("batch", "submit", "no-such.csv")
    assert result.returncode == 2
    assert "no such file: no-such.csv" in result.stderr


def test_refused_file_prints_every_row_error_as_a_table(cli: Cli, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "jobs.csv", "prompt,quality,external_id\nA fox,high,a\n,high,b\nA cat,ultra,a\n")
    result = cli.run("batch", "submit", str(csv_path))
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "3 errors in 2 of 3 rows; nothing was created" in err
    table_rows = [line for line in err.splitlines() if line.startswith("│")]
    assert any("3" in r and "prompt" in r and "must not be blank" in r for r in table_rows), err
    assert any("4" in r and "quality" in r and "'ultra' is not allowed" in r for r in table_rows), err
    assert any("4" in r and "external_id" in r and "duplicate external_id 'a'" in r for r in table_rows), err


def test_bad_option_value_is_usage(cli: Cli, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "jobs.csv", "prompt\nA fox\n")
    result = cli.run("batch", "submit", str(csv_path), "--max-in-flight", "0")
    assert result.returncode == 2
    assert "max_in_flight must be between 1 and 50" in result.stderr


def test_unknown_batch_is_usage(cli: Cli) -> None:
    result = cli.run("batch", "status", "bat_nope")
    assert result.returncode == 2
    assert "no batch 'bat_nope'" in result.stderr
    assert cli.run("batch", "results", "bat_nope").returncode == 2


def test_missing_argument_is_usage(cli: Cli) -> None:
    assert cli.run("batch", "submit").returncode == 2
    assert cli.run("submit").returncode == 2


def test_asset_that_is_neither_url_nor_file_is_usage(cli: Cli) -> None:
    result = cli.run("submit", "A fox", "--asset", "missing.png")
    assert result.returncode == 2
    assert "--asset 'missing.png' is neither an http(s) URL nor a file" in result.stderr


def test_unreachable_api_is_a_failure_not_usage(cli: Cli, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "jobs.csv", "prompt\nA fox\n")
    down = Cli(f"http://127.0.0.1:{free_port()}", cli.key, tmp_path)
    result = down.run("batch", "submit", str(csv_path))
    assert result.returncode == 1
    assert "cannot reach the reelmill API" in result.stderr


def test_submit_without_wait_prints_the_job(cli: Cli) -> None:
    result = cli.run("submit", "A fox in the snow", "--profile", "free-kling-ai-video-generation")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("job job_")


def test_batch_submit_without_wait_then_status_and_results(cli: Cli, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "jobs.csv", "prompt,external_id\nA fox,=1+1\nA cat,c\n")
    result = cli.run("batch", "submit", str(csv_path), "--max-in-flight", "1")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("batch bat_") and first.endswith("accepted: 2 jobs, 0 rows skipped")
    batch_id = first.split()[1]
    # A snapshot: when an earlier test of the session started workers, both jobs may already have run.
    status = cli.run("batch", "status", batch_id)
    assert status.returncode == 0, status.stderr
    assert status.stdout.split(":")[0] in {f"batch {batch_id} {s}" for s in ("queued", "running", "completed")}
    out = tmp_path / "results.csv"
    fetched = cli.run("batch", "results", batch_id, "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "line,external_id,status,output_url,error,artifact_url,artifact_sha256"
    assert lines[1].startswith("2,'=1+1,") and lines[2].startswith("3,c,")
    to_stdout = cli.run("batch", "results", batch_id)
    assert to_stdout.stdout.splitlines() == lines
