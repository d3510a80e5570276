"""The one place reelmill speaks NemoVideo (DESIGN.md principle 4).

client.py         NemoClient: every upstream call (sync httpx, thread-safe, one pool per process)
errors.py         the error tree (retryable / terminal by class) and ``error_from_reply``
wire.py           reply dataclasses (tokens, sessions, files, stream results, state, credits, renders)
replies.py        successful replies -> models; render_status.py: both render status shapes
sse.py            the SSE parser, decoder and collector; stream_reader.py: reading one open stream
tokens.py         token providers (configured or anonymous, minted once and shared)
uploads.py        checks against the skill profile before anything is sent
profiles.py       the two skill profiles (attribution headers, limits, formats)
draft.py          draft JSON helpers (export readiness, tracks, the timeline summary, fingerprints)
gui.py            the agent's GUI wording -> reelmill actions; intents.py: routing a user's message
credentials.py    the token store in the database, shared by every worker (DbTokenProvider)
upstream.py       the process's client, built once from settings

Modules are imported directly (``from shared.nemo.client import NemoClient``); this package imports nothing,
so the simulator can use ``profiles`` without pulling in the client. ``credentials`` and ``upstream`` are the
only modules here that know the database.
"""
