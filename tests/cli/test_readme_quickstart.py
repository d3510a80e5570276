"""The README's quickstart and its curl example, run as written against a `reelmill up --sim` this test starts.

The README marks its shell blocks with an HTML comment before the fence:

    <!-- test: up -->   the first terminal's command (`make run`): here `reelmill up --sim` is started by the test on
                        free ports in a temp data dir, so this block is only checked to be what `make run` runs
    <!-- test: env -->  the `export` line the banner prints; the README's copy has placeholders (the default port,
                        `rm_live_…`), so it must match the banner's real line, which is what runs
    <!-- test: run -->  run as written, in order, in one bash shell (after `set -euo pipefail`)
    <!-- test: api -->  the one curl example, run as written; its answer is checked

The blocks run in a scratch directory (where `prompts.csv` and `videos/` land) with `UV_PROJECT` pointing at the
checkout, which is what running them from the checkout does, without writing into it; `UV_OFFLINE` keeps uv off
the network. Nothing outside the repository and 127.0.0.1 is used."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.deploy.up_runner import BANNER, Up, clean_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKED = re.compile(r"<!-- test: (\w+) -->\s*\n```bash\n(.*?)^```", re.M | re.S)
HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)")
BATCH_ID = re.compile(r"\bbat_[0-9a-z]+\b")


def readme_blocks() -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for name, body in MARKED.findall(README.read_text(encoding="utf-8")):
        blocks.setdefault(name, []).append(body)
    return blocks


def commands_in(block: str) -> list[str]:
    """The shell commands of a block: a heredoc's body and a line continued with `\\` belong to their command."""
    commands: list[str] = []
    heredoc: str | None = None
    continued = False
    for line in block.splitlines():
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if line.strip() and not continued:
            commands.append(line.strip())
        continued = line.rstrip().endswith("\\")
        if marker := HEREDOC.search(line):
            heredoc = marker.group(1)
    return commands


def banner_export(stack: Up, readme_line: str) -> str:
    """The banner's `export` line, checked against the README's copy of it (same variables, same form)."""
    printed = next((line.strip() for line in stack.lines if line.strip().startswith("export REELMILL_API_URL=")), None)
    assert printed, f"the banner prints no export line:\n{stack.output()[-3000:]}"
    pattern = re.escape(readme_line.strip())
    pattern = pattern.replace(re.escape("127.0.0.1:8000"), r"127\.0\.0\.1:\d+")
    pattern = pattern.replace(re.escape("rm_live_…"), r"rm_live_\S+")
    assert re.fullmatch(pattern, printed), f"README says {readme_line.strip()!r}, the banner prints {printed!r}"
    return printed


def shell_env(stack: Up, tmp_path: Path) -> dict[str, str]:
    """A user's shell: none of our REELMILL_* settings, uv on PATH, the checkout as uv's project."""
    uv = shutil.which("uv") or os.environ.get("UV")
    assert uv, "uv is neither on PATH nor in $UV: the README's commands need it"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    link = bin_dir / "uv"
    if not link.exists():
        link.symlink_to(uv)
    env = clean_env(stack.data_dir, UV_PROJECT=str(ROOT), UV_OFFLINE="1", COLUMNS="200")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_bash(script: str, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    argv = ["bash", "-c", "set -euo pipefail\n" + script]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def is_mp4(path: Path) -> bool:
    head = path.read_bytes()[:12]
    return len(head) == 12 and head[4:8] == b"ftyp"


def test_the_readme_quickstart_and_curl_run_as_written(tmp_path: Path) -> None:
    blocks = readme_blocks()
    assert [b.strip() for b in blocks.get("up", [])] == ["make run"], blocks.get("up")
    assert "reelmill up --sim" in (ROOT / "Makefile").read_text(encoding="utf-8")
    assert len(blocks.get("env", [])) == 1 and blocks.get("run") and len(blocks.get("api", [])) == 1, blocks.keys()
    quickstart = [c for name in ("up", "env", "run") for block in blocks[name] for c in commands_in(block)]
    assert len(quickstart) < 10, f"the quickstart should take fewer than ten commands: {quickstart}"

    stack = Up(tmp_path / "data")
    stack.start()
    try:
        stack.wait_for(BANNER, timeout=120)
        export = banner_export(stack, blocks["env"][0])
        env = shell_env(stack, tmp_path)
        work = tmp_path / "work"
        work.mkdir()

        done = run_bash(export + "\n" + "\n".join(blocks["run"]), work, env, timeout=150)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out
        check_the_batch(stack, work, done.stdout)

        answer = run_bash(export + "\n" + blocks["api"][0], work, env, timeout=90)
        assert answer.returncode == 0, answer.stdout + answer.stderr
        check_the_job(answer.stdout, blocks["api"][0])
    finally:
        stack.signal(signal.SIGINT)
        try:
            stack.wait(60)
        finally:
            stack.kill()


def check_the_batch(stack: Up, work: Path, stdout: str) -> None:
    ids = set(BATCH_ID.findall(stdout))
    assert len(ids) == 1, stdout
    batch_id = ids.pop()
    assert f"batch {batch_id} completed: 3 succeeded, 0 failed" in stdout, stdout
    key = (stack.data_dir / "dev-api-key").read_text().strip()
    batch = httpx.get(f"{stack.api}/v1/batches/{batch_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["status"] == "completed" and body["total"] == 3 and body["counts"]["succeeded"] == 3, body

    with (work / "prompts.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3, rows
    expected = {f"{row['external_id']}.mp4" for row in rows}
    videos = sorted((work / "videos").iterdir())
    assert {v.name for v in videos} == expected, videos
    assert all(is_mp4(v) for v in videos), [v.read_bytes()[:12] for v in videos]
    listed = set(stdout.split())
    assert expected <= listed, stdout  # `ls videos/` showed them


def check_the_job(stdout: str, block: str) -> None:
    job = json.loads(stdout)
    prompt = json.loads(re.search(r"-d '(\{.*\})'", block, re.S).group(1))["prompt"]  # type: ignore[union-attr]
    assert job["id"].startswith("job_") and job["prompt"] == prompt, job
    assert job["status"] == "succeeded" and job["progress"] == 100, job
    assert job["output"]["url"] and job["output"]["format"] == "mp4", job
    assert [r["status"] for r in job["revisions"]] == ["succeeded"], job["revisions"]
