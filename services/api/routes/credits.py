"""`GET /v1/credits`: what the caller's queued work will spend, and (with `credits_show_balance`) the upstream
balance of the credential reelmill spends.

The balance belongs to the whole deployment (every tenant spends the same upstream credential), so by default a
tenant sees only its own reservations; an operator who wants tenants to see the shared balance sets
`REELMILL_CREDITS_SHOW_BALANCE=true`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from services.api.deps import TenantDep
from services.api.schemas.errors import protected
from services.api.schemas.misc import CreditsPublic
from shared.db import read_session
from shared.domain.credit_admission import committed
from shared.domain.errors import UpstreamUnavailableError
from shared.nemo.errors import NemoError
from shared.nemo.upstream import get_client
from shared.settings import get_settings

router = APIRouter(prefix="/v1", tags=["credits"])


@router.get(
    "/credits",
    summary="What your queued work will spend (and the upstream balance, if shown)",
    responses=protected(502),
)
async def credits(tenant: TenantDep) -> CreditsPublic:
    settings = get_settings()
    view: dict[str, Any] = {
        "reserved": await run_in_threadpool(_reserved, tenant.id),
        "cost_estimate": settings.cost_estimate,
        "balance": None,
    }
    if settings.credits_show_balance:
        view["balance"] = await run_in_threadpool(_balance)
    return CreditsPublic.model_validate(view)


def _reserved(tenant_id: str, everyone: bool = False) -> int:
    with read_session() as session:
        return committed(session, tenant_id=None if everyone else tenant_id)


def _balance() -> dict[str, int]:
    try:
        balance = get_client().get_credits()  # no database session is open here
    except NemoError as exc:
        raise UpstreamUnavailableError(f"NemoVideo did not answer the balance: {exc.user_message}") from None
    reserved_all = _reserved("", everyone=True)
    return {
        "available": balance.available,
        "frozen": balance.frozen,
        "total": balance.total,
        "reserved_all": reserved_all,
        "free": balance.available - reserved_all,
    }
