"""Any HTTP client will do: the whole message flow driven by curl."""

from __future__ import annotations

import json
import subprocess

from tests.utils.sim_admin import SimAdmin


def _curl(*args: str) -> str:
    command = ["curl", "-sS", "--max-time", "10", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def test_curl_drives_token_session_message_state(sim: SimAdmin) -> None:
    sim.configure(silent_share=0.0)
    base = sim.base_url
    token = json.loads(_curl("-X", "POST", f"{base}/api/auth/anonymous-token", "-H", "X-Client-Id: curl-1"))
    auth = f"Authorization: Bearer {token['data']['token']}"
    session = json.loads(
        _curl("-X", "POST", f"{base}/api/tasks/me/with-session/nemo_agent", "-H", auth,
              "-H", "Content-Type: application/json", "-d", '{"task_name":"project","language":"en"}')
    )  # fmt: skip
    sid = session["data"]["session_id"]
    message = {"app_name": "nemo_agent", "user_id": "me", "session_id": sid,
               "new_message": {"parts": [{"text": "make a video about cats"}]}}  # fmt: skip
    stream = _curl("-N", "-X", "POST", f"{base}/run_sse", "-H", auth, "-H", "Accept: text/event-stream",
                   "-H", "Content-Type: application/json", "-d", json.dumps(message))  # fmt: skip
    data_lines = [line[6:] for line in stream.splitlines() if line.startswith("data: {")]
    assert any('"functionCall"' in line for line in data_lines)
    assert json.loads(data_lines[-1])["finishReason"] == "STOP"
    state = json.loads(_curl(f"{base}/api/state/nemo_agent/me/{sid}/latest", "-H", auth))
    assert state["data"]["state"]["draft"]["m"]["title"] == "Cats"
