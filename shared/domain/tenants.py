"""Tenants, API keys and per-tenant webhook secrets.

An API key is `rm_live_<32 url-safe chars>`; only its SHA-256 digest is stored, so it is printed once, at creation.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, select

from shared.domain.errors import NotFound, Unauthorized
from shared.ids import new_id
from shared.tables import ApiKey, Tenant
from shared.timeutil import as_utc, utcnow

KEY_PREFIX = "rm_live_"


@dataclass(frozen=True)
class NewKey:
    tenant_id: str
    tenant_name: str
    key_id: str
    key: str  # shown once


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def get_or_create_tenant(session: Session, name: str) -> Tenant:
    tenant = session.exec(select(Tenant).where(Tenant.name == name)).first()
    if tenant is None:
        tenant = Tenant(id=new_id("ten"), name=name, webhook_secret=new_webhook_secret())
        session.add(tenant)
        session.flush()
    return tenant


def create_key(session: Session, tenant_name: str) -> NewKey:
    tenant = get_or_create_tenant(session, tenant_name)
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    row = ApiKey(id=new_id("key"), tenant_id=tenant.id, prefix=key[: len(KEY_PREFIX) + 4], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return NewKey(tenant_id=tenant.id, tenant_name=tenant.name, key_id=row.id, key=key)


def revoke_key(session: Session, key_or_id: str) -> ApiKey:
    """Revoke by key id (`key_…`) or by the key itself."""
    row = (
        session.get(ApiKey, key_or_id)
        or session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key_or_id))).first()
    )
    if row is None:
        raise NotFound("no such API key")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
    return row


def list_keys(session: Session, tenant_name: str | None = None) -> list[tuple[ApiKey, Tenant]]:
    stmt = select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.id)
    if tenant_name:
        stmt = stmt.where(Tenant.name == tenant_name)
    return list(session.exec(stmt).all())


_LIVE_KEY = (  # built once: every API request runs it, and building it cost about as much as running it
    select(Tenant)
    .join(ApiKey, ApiKey.tenant_id == Tenant.id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
)


def authenticate(session: Session, key: str) -> Tenant:
    """The tenant of a live key, in one statement (every API request runs it)."""
    tenant = session.exec(_LIVE_KEY, params={"key_hash": hash_key(key)}).first()
    if tenant is None:
        raise Unauthorized("invalid or revoked API key")
    return tenant


def authenticate_key(key: str) -> Tenant:
    """``authenticate`` in a short read-only session of its own, closed before returning (its connection goes back
    to the pool at once): the API authenticates every request this way, before it reads the body."""
    from shared.db import read_session

    with read_session() as session:
        tenant = authenticate(session, key)
        session.expunge(tenant)
    return tenant


def webhook_secrets(tenant: Tenant) -> list[str]:
    """The secrets to sign with now: the current one, and the previous one during a rotation window."""
    keys = [tenant.webhook_secret]
    until = as_utc(tenant.previous_secret_until)
    if tenant.previous_webhook_secret and until and until > utcnow():
        keys.append(tenant.previous_webhook_secret)
    return keys


def rotate_webhook_secret(session: Session, tenant: Tenant, window: timedelta) -> Tenant:
    tenant.previous_webhook_secret = tenant.webhook_secret
    tenant.previous_secret_until = utcnow() + window
    tenant.webhook_secret = new_webhook_secret()
    session.add(tenant)
    return tenant
