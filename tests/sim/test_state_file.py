"""``reelmill sim --state-file``: users, tokens, credits, sessions, drafts, uploads and renders survive a restart
(graceful or SIGKILL); a render goes on by the wall clock; an agent run cut by the stop is finished on restore."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sim.upstream import Upstream, message_body
from tests.utils.net import free_port, wait_http
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until


class SimProcess:
    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SimAdmin:
        env = {**os.environ, "REELMILL_SIM_TIME_SCALE": "0.01", "REELMILL_SIM_STATE_SAVE_DELAY_S": "0.05"}
        cmd = [sys.executable, "-m", "services.cli.main", "sim", "--port", str(self.port)]
        self.proc = subprocess.Popen([*cmd, "--state-file", str(self.state_file)], env=env)
        wait_http(f"{self.url}/_sim/health", proc=self.proc)
        return SimAdmin(self.url)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=20)
        self.proc = None


@pytest.fixture()
def simproc(tmp_path: Path) -> Iterator[SimProcess]:
    proc = SimProcess(tmp_path / "state" / "sim.json")
    yield proc
    if proc.proc is not None:
        proc.stop(signal.SIGKILL)


def _saved(path: Path) -> dict:
    return json.loads(path.read_bytes()) if path.exists() else {}


def test_state_survives_a_restart(simproc: SimProcess) -> None:
    sim = simproc.start()
    sim.configure(silent_share=1.0, message_seconds=10.0, render_seconds=300.0)  # 3 s renders
    up = Upstream(simproc.url)
    up.mint("restart-client")
    sid = up.new_session()
    assert up.upload(sid, [("city.mp4", b"\x00" * 5000)]).json()["code"] == 0
    up.message(sid, "make a video")
    draft = up.draft(sid)
    assert up.submit("render_keep", sid, draft).json()["success"] is True
    sha = sim.render_sha256("render_keep")
    # a run whose edit has landed and one whose edit has not, both still running at the stop
    sim.configure(message_seconds=3000.0)  # 30 s runs, the edit 3 s in
    edited, unedited = up.new_session(), up.new_session()
    with up.http.stream("POST", "/run_sse", headers=up.headers(), json=message_body(edited, "first")):
        pass
    wait_until(lambda: sim.session(edited)["draft_version"] == 1, timeout=10)
    with up.http.stream("POST", "/run_sse", headers=up.headers(), json=message_body(unedited, "second")):
        pass
    assert up.credits() == {"available": 70, "frozen": 20, "total": 90}
    simproc.stop()

    assert stat.S_IMODE(simproc.state_file.stat().st_mode) == 0o600
    assert _saved(simproc.state_file)["format"] == 1 and len(_saved(simproc.state_file)["runs"]) == 2
    sim = simproc.start()
    up.http = httpx.Client(base_url=simproc.url, timeout=15.0)
    assert up.credits() == {"available": 70, "frozen": 0, "total": 70}  # the runs finished: credits spent
    assert up.draft(sid) == draft and sim.session(sid)["messages"] == ["make a video"]
    assert (sim.session(edited)["draft_version"], sim.session(unedited)["draft_version"]) == (1, 1)
    assert sim.summary()["messages_sent"] == 3 and sim.counters()["runs_in_progress"] == 0
    files = sim.session(sid)["files"]
    assert [f["filename"] for f in files] == ["city.mp4"]
    assert httpx.get(f"{simproc.url}/_sim/files/{sid}/city.mp4").content == b"\x00" * 5000
    sim.configure(render_shape="B")
    done = wait_until(lambda: (d := up.render_status("render_keep").json())["status"] == "completed" and d, 10)
    body = httpx.get(done["output"]["url"]).content  # the link signed before the restart still works
    assert sim.render_sha256("render_keep") == sha and len(body) == done["output"]["size"]
    sim.reset()
    simproc.stop()
    assert _saved(simproc.state_file)["sessions"] == []


def test_state_is_written_while_running_and_survives_sigkill(simproc: SimProcess) -> None:
    simproc.start()
    up = Upstream(simproc.url)
    user = up.mint("kill-client")["user_id"]
    sid = up.new_session()
    wait_until(lambda: sid in {s["session_id"] for s in _saved(simproc.state_file).get("sessions", [])}, 5)
    assert user in {u["user_id"] for u in _saved(simproc.state_file)["users"]}
    simproc.stop(signal.SIGKILL)
    simproc.start()
    up.http = httpx.Client(base_url=simproc.url, timeout=15.0)
    assert up.credits()["available"] == 100 and up.state(sid).json()["code"] == 0
    assert not list(simproc.state_file.parent.glob(".*.tmp"))


def test_a_broken_state_file_stops_the_start(tmp_path: Path) -> None:
    broken = tmp_path / "sim.json"
    broken.write_text("{not json")
    cmd = [sys.executable, "-m", "services.cli.main", "sim", "--port", str(free_port()), "--state-file", str(broken)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "cannot load the simulator's state" in done.stderr
    assert broken.read_text() == "{not json"  # left as it was
