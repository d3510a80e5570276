"""`GET /v1/credits`: the upstream balance of the credential reelmill spends."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.deps import SessionDep, TenantDep
from shared.domain.credit_admission import committed
from shared.domain.errors import UpstreamUnavailableError
from shared.nemo.errors import NemoError
from shared.nemo.upstream import get_client
from shared.settings import get_settings

router = APIRouter(prefix="/v1", tags=["credits"])


@router.get("/credits", summary="Upstream credit balance, and what queued work will spend")
def credits(tenant: TenantDep, session: SessionDep) -> dict[str, Any]:
    try:
        balance = get_client().get_credits()
    except NemoError as exc:
        raise UpstreamUnavailableError(f"NemoVideo did not answer the balance: {exc.user_message}") from None
    reserved = committed(session)
    return {
        "available": balance.available,
        "frozen": balance.frozen,
        "total": balance.total,
        "reserved": reserved,
        "free": balance.available - reserved,
        "cost_estimate": get_settings().cost_estimate,
    }
