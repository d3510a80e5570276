"""The mirror task's body: copy one artifact (a turn's render output) into the artifact store.

    claim (lease, attempt + 1) -> open the source -> stream: ftyp check, sha256, size -> store -> settle

The lease is renewed every few seconds while the bytes flow, and each renewal reads the job: a job canceled
meanwhile stops the download, and the partial copy is dropped. Failures are settled by shared/artifacts/rows.py:
retried with backoff while they may pass, else the artifact fails with the reason. The job's status is never
touched here.
"""

from __future__ import annotations

import logging
import time
import uuid

from shared.artifacts import rows
from shared.artifacts.errors import LeaseLost, MirrorError
from shared.artifacts.source import open_source
from shared.artifacts.stores import open_store
from shared.artifacts.transfer import Copied, copy_into
from shared.logs import job_context
from shared.nemo.client import NemoClient
from shared.nemo.upstream import get_client
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)
CHECK_EVERY_S = 2.0  # at most this long between a cancel and the download stopping


def mirror_artifact(artifact_id: str, client: NemoClient | None = None) -> None:
    claim = rows.claim(artifact_id, f"mirror-{uuid.uuid4().hex[:12]}")
    if claim is None:
        log.debug("artifact %s: nothing to do (stored, failed, or held by another worker)", artifact_id)
        return
    with job_context(claim.job_id):
        try:
            copied = _copy(claim, client or get_client(), get_settings())
        except LeaseLost:
            log.warning("artifact %s: another worker took it over; this copy was dropped", artifact_id)
            return
        except MirrorError as exc:
            rows.settle_error(claim, exc)
            return
        except Exception as exc:  # a bug or an unexpected library error: counted as an attempt, retried
            log.exception("artifact %s: unexpected failure", artifact_id)
            rows.settle_error(claim, MirrorError(f"unexpected error ({exc.__class__.__name__})"))
            return
        rows.settle_stored(claim, copied)


def _copy(claim: rows.Claim, client: NemoClient, settings: Settings) -> Copied:
    store = open_store(claim.store_url, settings)
    watch = _Watch(claim, min(CHECK_EVERY_S, settings.lease_s / 3))
    source = open_source(client, claim.source, settings)
    log.info("artifact %s: copying from the %s (attempt %d)", claim.artifact_id, source.name, claim.attempt)
    try:
        return copy_into(source.chunks(), store, claim.key, max_bytes=settings.artifact_max_bytes, tick=watch.tick)
    finally:
        source.close()


class _Watch:
    """Renews the lease (and looks for a cancel) every ``every`` seconds while chunks arrive."""

    def __init__(self, claim: rows.Claim, every: float) -> None:
        self.claim = claim
        self.every = every
        self.next = time.monotonic() + every

    def tick(self, _size: int) -> None:
        now = time.monotonic()
        if now >= self.next:
            rows.renew(self.claim)
            self.next = now + self.every
