"""Artifacts: every render's MP4 copied to storage the operator controls, with its checksum (docs/artifacts.md).

errors.py   the failure tree: which failures retry and which are final
mp4.py      the `ftyp` check on a body's first bytes
keys.py     object keys and the store URL syntax
stores/     the stores: a local directory and S3-compatible buckets, one protocol
transfer.py the byte path: chunks -> check -> sha256/size -> store writer, in constant memory
source.py   where the bytes come from: the output URL (guarded), else the render's download endpoint
plan.py     `plan_mirror`: the engine calls it when a turn's render completes
rows.py     claiming, renewing and settling an artifact row
sweep.py    `sweep_artifacts` and `expire_due`: lost mirrors re-sent, expired copies deleted
lookup.py   which artifact `GET /v1/jobs/{id}/output` serves, or the error that says why none
views.py    the public `artifact` object
"""
