"""What `reelmill up` tells the user: the development switches that are on, and the banner printed once
everything is ready (URLs, credentials, a command line that works as printed)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.settings import PRODUCTION_NEMO_BASE_URL, Settings

BANNER_TITLE = "reelmill is up."
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Shown:
    """What the banner shows; secrets go to the terminal only, never to a log file."""

    api: str
    flower: str
    sim: str | None
    sim_credits: str | None
    data_dir: Path
    key: str
    flower_user: str
    flower_password: str | None  # None: the operator's own REELMILL_FLOWER_PASSWORD
    cli: str


def dev_switches(child: Settings) -> list[str]:
    """The switches that loosen production behaviour, in the settings the children run with."""
    on = []
    if child.nemo_base_url != PRODUCTION_NEMO_BASE_URL:
        on.append(f"NemoVideo replaced by {child.nemo_base_url} (REELMILL_NEMO_BASE_URL)")
    if child.outbound_allow_addresses:
        on.append(
            f"outbound allowed to {', '.join(child.outbound_allow_addresses)} (REELMILL_OUTBOUND_ALLOW_ADDRESSES)"
        )
    if child.outbound_allow_private:
        on.append("outbound allowed to every private address (REELMILL_OUTBOUND_ALLOW_PRIVATE)")
    if child.outbound_allow_http:
        on.append("outbound allowed over plain http (REELMILL_OUTBOUND_ALLOW_HTTP)")
    if child.webhook_loopback_only:
        on.append("webhooks only to loopback (REELMILL_WEBHOOK_LOOPBACK_ONLY)")
    if not child.credit_admission:
        on.append("credit admission off (REELMILL_CREDIT_ADMISSION)")
    if child.webhook_schedule_scale != 1.0:
        on.append(f"webhook retry schedule x{child.webhook_schedule_scale:g} (REELMILL_WEBHOOK_SCHEDULE_SCALE)")
    if child.render_poll_s != Settings.model_fields["render_poll_s"].default:
        on.append(f"render poll every {child.render_poll_s:g} s (REELMILL_RENDER_POLL_S)")
    return on


def cli_invocation() -> str:
    """How the user runs `reelmill` from their shell, printed so that it works as printed.

    Under `uv run` (uv sets ``UV``) the venv's bin is on our PATH, not theirs: say `uv run reelmill` (with
    ``--project`` when they are elsewhere). Otherwise `reelmill` if it is on PATH and is ours, else its full path."""
    ours = Path(sys.executable).parent / "reelmill"
    uv = os.environ.get("UV")
    if uv and (PROJECT_ROOT / "pyproject.toml").is_file():
        runner = "uv" if shutil.which("uv") and Path(shutil.which("uv") or "").resolve() == Path(uv).resolve() else uv
        here = Path.cwd().resolve()
        inside = here == PROJECT_ROOT or PROJECT_ROOT in here.parents
        project = "" if inside else f" --project {shlex.quote(str(PROJECT_ROOT))}"
        return f"{shlex.quote(runner)} run{project} reelmill"
    found = shutil.which("reelmill")
    if found and ours.exists() and Path(found).resolve() == ours.resolve():
        return "reelmill"
    if ours.exists():
        return shlex.quote(str(ours))
    return f"{shlex.quote(sys.executable)} -m services.cli.main"


def banner(shown: Shown, switches: list[str]) -> list[str]:
    if shown.flower_password is None:
        auth = f"user {shown.flower_user}, password from REELMILL_FLOWER_PASSWORD"
    else:
        auth = (
            f"user {shown.flower_user}, password {shown.flower_password} kept in {shown.data_dir / 'flower-password'}"
        )
    lines = [
        f"{BANNER_TITLE} Ctrl-C stops everything (press it again to stop waiting for running steps).",
        f"  API docs   {shown.api}/docs",
        f"  Flower     {shown.flower}/  ({auth})",
    ]
    if shown.sim:
        lines.append(f"  simulator  {shown.sim}  (stands in for NemoVideo; {shown.sim_credits} anonymous credits)")
        lines += [
            "             more credits: set REELMILL_SIM_ANONYMOUS_CREDITS before starting, or while running:",
            f"             curl -s -X POST {shown.sim}/_sim/credits -H 'Content-Type: application/json' \\",
            "               -d '{\"available\": 1000000}'",
        ]
    lines.append(f"  logs       {shown.data_dir / 'logs'}/<role>.log")
    if switches:
        lines.append("  development switches on:")
        lines += [f"    - {s}" for s in switches]
    lines += [
        f"  dev API key (tenant 'dev', kept in {shown.data_dir / 'dev-api-key'}):",
        f"    {shown.key}",
        "  try:",
        f"    export REELMILL_API_URL={shown.api} REELMILL_API_KEY={shown.key}",
        f"    {shown.cli} submit 'a paper boat sailing down a rainy street' --wait",
        '    curl -s "$REELMILL_API_URL/v1/jobs" -H "Authorization: Bearer $REELMILL_API_KEY"',
        "  job events follow below.",
    ]
    return lines
