"""One heavy test at a time across the pytest-xdist processes of a run.

The CPU-bound, timing-sensitive tests (`@pytest.mark.heavy`: the chaos and fairness runs, schemathesis, the
1,000-row batch) each start a whole stack; two of them side by side on two cores made each miss its marks. A test
marked `heavy` takes a file lock shared by the run's processes (`PYTEST_XDIST_TESTRUNUID` names it) before its
setup, outside pytest-timeout's clock, and holds it until its teardown ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def one_at_a_time() -> Iterator[None]:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:  # one process: nothing runs beside it
        yield
        return
    path = Path(tempfile.gettempdir()) / f"reelmill-heavy-{run}.lock"
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
