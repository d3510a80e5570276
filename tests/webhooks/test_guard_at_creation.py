"""A job whose webhook points inside the network is refused when it is created: 422 naming the field `webhook`.
(The test stack allows loopback; these tests switch that off in this process, where the API runs.)"""

from __future__ import annotations

import pytest

from shared.settings import get_settings
from tests.utils.stack import Tenant

REFUSED = [
    "http://127.0.0.1:8080/hook",
    "http://[::1]/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.0.10/hook",
    "http://[fc00::5]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
    "http://[ff02::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://localhost:8080/hook",
]


@pytest.fixture()
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "outbound_allow_private", False)


@pytest.mark.parametrize("url", REFUSED)
def test_internal_webhook_is_refused(api, tenant: Tenant, strict: None, url: str) -> None:
    resp = api.post("/v1/jobs", json={"prompt": "a cat", "webhook": url}, headers=tenant.headers)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["field"] == "webhook"
    assert "not allowed" in error["message"]


def test_https_required_unless_configured(api, tenant: Tenant, strict: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "outbound_allow_http", False)
    resp = api.post("/v1/jobs", json={"prompt": "a cat", "webhook": "http://8.8.8.8/hook"}, headers=tenant.headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == "webhook" and "https" in resp.json()["error"]["message"]
    assert api.get("/v1/jobs", headers=tenant.headers).json()["data"] == []  # nothing was half-written
