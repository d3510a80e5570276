"""A pace refusal of a few milliseconds is waited out in the calling thread (parking the job would cost a database
write, a scheduler tick and a dispatch); a longer one raises `Paced`, and the job waits in the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.nemo import client as nemo_client
from shared.nemo.client import NemoClient
from shared.nemo.errors import Paced


class ScriptedPace:
    def __init__(self, *waits: float) -> None:
        self.waits = list(waits)
        self.taken = 0

    def take(self, cls: str) -> float:
        self.taken += 1
        return self.waits.pop(0)

    def penalize(self, cls: str, retry_after_s: float | None = None) -> float:
        return 0.0

    def reward(self, cls: str) -> None:
        return None


@pytest.fixture()
def nemo() -> Iterator[NemoClient]:
    with NemoClient("http://127.0.0.1:9") as made:  # no call is sent: the pace is all these tests ask
        yield made


def test_short_waits_are_slept_then_the_call_goes(nemo: NemoClient) -> None:
    pace = ScriptedPace(0.01, 0.02, 0.0)
    nemo.pace = pace
    nemo.pace_before("stream")
    assert pace.taken == 3 and pace.waits == []


def test_a_longer_wait_parks_the_job(nemo: NemoClient) -> None:
    pace = ScriptedPace(0.5)
    nemo.pace = pace
    with pytest.raises(Paced) as caught:
        nemo.pace_before("call")
    assert caught.value.retry_after == 0.5 and pace.taken == 1


def test_the_waits_slept_are_bounded_in_all(nemo: NemoClient) -> None:
    step = nemo_client.PACE_SLEEP_S * 0.6  # one fits, the second would go over the bound
    pace = ScriptedPace(step, step, 0.0)
    nemo.pace = pace
    with pytest.raises(Paced):
        nemo.pace_before("call")
    assert pace.taken == 2
