"""Why a mirror failed, as one tree; each class says whether another attempt can help.

MirrorError                   (retryable unless said otherwise)
├── SourceUnavailable         the upstream did not serve the file now (5xx, connection, timeout)
├── SourceGone                final: the output link expired and the download endpoint has no such render
├── NotMp4                    final: the body is not an MP4 (no `ftyp` box first)
├── TooLarge                  final: the body is over `artifact_max_bytes`
├── StoreFull                 the store has no room (ENOSPC, a quota, a bucket that refuses writes)
├── StoreUnavailable          the store is down or refused the request
└── MirrorCanceled            final: the job was canceled while its output was being copied
"""

from __future__ import annotations


class MirrorError(Exception):
    retryable = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceUnavailable(MirrorError):
    pass


class SourceGone(MirrorError):
    retryable = False


class NotMp4(MirrorError):
    retryable = False


class TooLarge(MirrorError):
    retryable = False


class StoreFull(MirrorError):
    pass


class StoreUnavailable(MirrorError):
    pass


class MirrorCanceled(MirrorError):
    retryable = False


class LeaseLost(Exception):
    """Another worker holds the artifact now: stop without writing its row."""
