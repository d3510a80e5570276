"""What /metrics shows of one credential's pace: in flight, effective caps, current rates, 429s, waits, pauses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.pace.config import CLASSES, RESOURCE_CLASS, PaceConfig


@dataclass(frozen=True)
class PaceSnapshot:
    credential: str
    available: bool  # Redis answered; when False every figure below is empty
    ready: bool = False  # the state is whole (False after a flush, until the first rebuild)
    in_flight: dict[str, int] = field(default_factory=dict)  # resource -> live holders
    caps: dict[str, int] = field(default_factory=dict)  # resource -> effective cap (AIMD)
    max_caps: dict[str, int] = field(default_factory=dict)  # resource -> configured cap
    rates: dict[str, float] = field(default_factory=dict)  # class -> current calls per second (AIMD)
    max_rps: float = 0.0  # configured calls per second, all classes together
    rate_limited: dict[str, int] = field(default_factory=dict)  # class -> 429s seen
    throttled: dict[str, int] = field(default_factory=dict)  # class -> refusals (throttle waits)
    pause_remaining: dict[str, float] = field(default_factory=dict)  # class -> seconds


def parse_snapshot(credential: str, config: PaceConfig, reply: list[Any] | None) -> PaceSnapshot:
    if reply is None:
        return PaceSnapshot(credential, available=False)
    now, ready, aimd_pairs, stats_pairs, *counts = reply
    now = float(now)
    aimd, stats = _pairs(aimd_pairs), _pairs(stats_pairs)
    floor = config.floor_rps()
    return PaceSnapshot(
        credential=credential,
        available=True,
        ready=bool(int(ready)),
        in_flight={res: int(n) for res, n in zip(RESOURCE_CLASS, counts, strict=True)},
        caps={res: _cap(aimd, RESOURCE_CLASS[res], config.max_cap(res)) for res in RESOURCE_CLASS},
        max_caps={res: config.max_cap(res) for res in RESOURCE_CLASS},
        rates={cls: min(max(float(aimd.get(f"rate:{cls}", config.rps)), floor), config.rps) for cls in CLASSES},
        max_rps=config.rps,
        rate_limited={cls: int(stats.get(f"429:{cls}", 0)) for cls in CLASSES},
        throttled={cls: int(stats.get(f"throttled:{cls}", 0)) for cls in CLASSES},
        pause_remaining={cls: max(0.0, float(aimd.get(f"pause:{cls}", 0)) - now) for cls in CLASSES},
    )


def _cap(aimd: dict[str, str], cls: str, max_cap: int) -> int:
    return min(max(int(float(aimd.get(f"cap:{cls}", max_cap))), 1), max_cap)


def _pairs(flat: list[Any]) -> dict[str, str]:
    text = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
    return dict(zip(text[::2], text[1::2], strict=True))
