"""docker-compose.yml, checked offline: the compose spec, the CLI commands it runs, and the operational rules."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings
from shared.taskq.queues import ALL_QUEUES, ARTIFACTS, STEPS, STREAMS, WEBHOOKS
from tests.deploy.cli_paths import parse_cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_ROLES = {"api", "worker-steps", "worker-streams", "worker-webhooks", "worker-artifacts", "beat", "flower"}
ALL_SERVICES = APP_ROLES | {"redis", "postgres", "migrate", "sim"}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY", re.I)


def check_jsonschema() -> str:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return str(exe) if exe.exists() else shutil.which("check-jsonschema") or pytest.skip("no check-jsonschema")


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the x- anchors and << merges


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"unparsed duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_file_matches_the_compose_spec() -> None:
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    stop_grace_period: 60s", "    stop_grace_periods: 60s"))
    assert validate(broken).returncode != 0


def test_every_role_is_a_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == ALL_SERVICES
    assert compose["services"]["sim"]["profiles"] == ["demo"]
    assert all("profiles" not in svc for name, svc in compose["services"].items() if name != "sim")


@pytest.mark.parametrize("name", sorted(APP_ROLES | {"migrate", "sim"}))
def test_service_command_exists_in_the_cli(compose: dict[str, Any], name: str) -> None:
    command = compose["services"][name]["command"]
    path, params = parse_cli(command)
    assert path == command[0]
    if path in {"api", "flower", "sim"}:
        assert params["host"] == "0.0.0.0"  # reachable from the other containers and the published port


def test_workers_cover_every_queue_one_each(compose: dict[str, Any]) -> None:
    """Webhook deliveries and artifact copies run on workers of their own: a slow receiver or a slow download
    never holds a job step's thread."""
    served = {}
    for name in ("worker-steps", "worker-streams", "worker-webhooks", "worker-artifacts"):
        _, params = parse_cli(compose["services"][name]["command"])
        served[name] = params["queues"]
    assert served == {
        "worker-steps": STEPS,
        "worker-streams": STREAMS,
        "worker-webhooks": WEBHOOKS,
        "worker-artifacts": ARTIFACTS,
    }
    assert set(served.values()) == set(ALL_QUEUES)


def test_app_services_wait_for_the_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in APP_ROLES - {"flower"}:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"


def test_health_checks_and_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (
        "api",
        "worker-steps",
        "worker-streams",
        "worker-webhooks",
        "worker-artifacts",
        "flower",
        "redis",
        "postgres",
        "sim",
    ):
        assert services[name]["healthcheck"]["test"], name
    mounted = {v.split(":")[0] for svc in services.values() for v in svc.get("volumes", [])}
    assert {"pg-data", "redis-data", "uploads", "artifacts"} <= mounted <= set(compose["volumes"])


def test_workers_have_time_to_finish_or_hand_back_on_stop(compose: dict[str, Any]) -> None:
    """A short step finishes; an open stream is handed back at once (services/worker/eventloop.py), so the streams
    worker needs seconds, not the 15 minutes a stream may last."""
    services = compose["services"]
    assert 30 <= seconds(services["worker-streams"]["stop_grace_period"]) < Settings.model_fields["sse_max_s"].default
    assert seconds(services["worker-steps"]["stop_grace_period"]) >= 60


def test_no_secret_is_written_into_the_file(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_NAME.search(key) and value:
                assert str(value).startswith("${"), f"{name}: {key} is hard-coded"
    database_url = compose["services"]["api"]["environment"]["REELMILL_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:?" in database_url
    assert compose["services"]["flower"]["environment"]["REELMILL_FLOWER_PASSWORD"].startswith(
        "${REELMILL_FLOWER_PASSWORD:?"
    )


def test_flower_is_published_on_loopback_only_with_a_required_password(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    assert [p.split(":")[0] for p in flower["ports"]] == ["127.0.0.1"]
    assert flower["environment"]["REELMILL_FLOWER_PASSWORD"].startswith("${REELMILL_FLOWER_PASSWORD:?")
    text = COMPOSE.read_text()
    assert "CHANGE-ME" not in text and ":-demo" not in text and "=demo" not in text


def test_redis_requires_a_password_from_the_environment(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    script = " ".join(redis["command"])
    assert redis["environment"]["REELMILL_REDIS_PASSWORD"].startswith("${REELMILL_REDIS_PASSWORD:?")
    assert "requirepass" in script and "$$REELMILL_REDIS_PASSWORD" in script
    assert "--requirepass" not in script  # never on a command line
    for command in ("FLUSHALL", "FLUSHDB", "CONFIG", "DEBUG", "SHUTDOWN", "KEYS"):
        assert command in script, command
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    app_env = compose["services"]["api"]["environment"]
    assert app_env["REELMILL_REDIS_URL"] == "redis://redis:6379/0"  # the password travels on its own
    assert app_env["REELMILL_REDIS_PASSWORD"] == redis["environment"]["REELMILL_REDIS_PASSWORD"]
