"""The small answers: credits, health and readiness."""

from __future__ import annotations

from services.api.schemas.base import Public


class Balance(Public):
    """The upstream balance of the credential every tenant spends, and what queued work already reserved."""

    available: int
    frozen: int
    total: int
    reserved_all: int
    free: int


class CreditsPublic(Public):
    reserved: int
    cost_estimate: dict[str, int]
    balance: Balance | None


class Health(Public):
    status: str


class ReadyChecks(Public):
    database: str
    redis: str


class Ready(Public):
    status: str
    checks: ReadyChecks
