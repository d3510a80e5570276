"""Every batch test cleans up after itself: its tenant's open jobs are canceled at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.batches.helpers import end_open_jobs
from tests.utils.stack import Tenant


@pytest.fixture(autouse=True)
def _leave_nothing_open(request: pytest.FixtureRequest) -> Iterator[None]:
    tenant: Tenant | None = request.getfixturevalue("tenant") if "tenant" in request.fixturenames else None
    yield
    if tenant is not None:
        end_open_jobs(tenant.name)
