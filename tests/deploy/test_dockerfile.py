"""The Dockerfile, read as text (no Docker engine here): one multi-stage image, uv from PyPI, a non-root user,
`reelmill` as the entrypoint with a default command the CLI accepts, and nothing it copies left out by
.dockerignore."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

from tests.deploy.cli_paths import parse_cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """Arguments of every ``name`` instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.M)]


def test_multi_stage_with_uv_from_pypi() -> None:
    stages = instructions("FROM")
    assert len(stages) >= 2 and stages[-1].endswith("AS runtime")
    assert any('pip install --no-cache-dir "uv==${UV_VERSION}"' in run for run in instructions("RUN"))
    syncs = [run for run in instructions("RUN") if "uv sync" in run]
    assert syncs and all("--locked" in run and "--no-dev" in run for run in syncs)


def test_runs_as_a_non_root_user_with_reelmill_as_entrypoint() -> None:
    user = instructions("USER")[-1]
    assert user.split(":")[0] not in {"root", "0"}
    assert json.loads(instructions("ENTRYPOINT")[-1]) == ["reelmill"]
    command = json.loads(instructions("CMD")[-1])
    path, params = parse_cli(command)
    assert path == "api" and params["host"] == "0.0.0.0"


def test_copied_sources_exist_and_are_not_docker_ignored() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for copy in instructions("COPY"):
        if "--from=" in copy:
            continue
        sources += copy.split()[:-1]
    assert {"pyproject.toml", "uv.lock", "migrations", "shared", "services"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), f"{source} is docker-ignored"
    for heavy in (".venv", ".git", "tests", ".reelmill"):
        assert heavy in ignored
