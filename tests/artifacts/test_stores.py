"""The two stores through their protocol: the local directory, and S3 against moto's server over HTTP.
An object is visible whole or not at all; an abort leaves nothing; failures become StoreFull/StoreUnavailable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.artifacts.errors import StoreUnavailable
from shared.artifacts.stores import open_store, parse_store_url
from shared.artifacts.stores.local import LocalStore
from shared.artifacts.stores.s3 import PART_SIZE, S3Store, s3_client
from tests.artifacts.conftest import Moto
from tests.utils.net import free_port

KEY = "ten_1/job_1/0.mp4"


def blob(size: int) -> bytes:
    return (b"\x00\x00\x00\x18ftypisom" + os.urandom(64)) * (size // 76) + b"x" * (size % 76)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalStore | S3Store]:
    if request.param == "local":
        yield LocalStore(tmp_path / "artifacts")
    else:
        moto: Moto = request.getfixturevalue("moto")
        yield S3Store(moto.new_bucket(), "pre/fix", s3_client(moto.url))


def visible(store: LocalStore | S3Store, key: str) -> bool:
    return store.size_of(key) is not None


def test_an_object_appears_only_when_committed(store):
    data = blob(2 * PART_SIZE + 12345)
    writer = store.writer(KEY, "video/mp4")
    for i in range(0, len(data), 1 << 20):
        writer.write(data[i : i + (1 << 20)])
        assert not visible(store, KEY)
    writer.commit()
    assert store.size_of(KEY) == len(data)
    assert b"".join(store.read(KEY)) == data
    assert b"".join(store.read(KEY, 10, 19)) == data[10:20]
    assert b"".join(store.read(KEY, len(data) - 5)) == data[-5:]
    store.delete(KEY)
    assert not visible(store, KEY)
    store.delete(KEY)  # deleting what is gone is not an error


def test_an_aborted_write_leaves_nothing(store):
    writer = store.writer(KEY, "video/mp4")
    writer.write(blob(PART_SIZE + 10))
    writer.abort()
    writer.abort()  # twice is harmless
    assert not visible(store, KEY)
    if isinstance(store, LocalStore):
        assert [p for p in store.root.rglob("*") if p.is_file()] == []
    else:
        assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_a_new_copy_replaces_the_old_one_whole(store):
    for size in (1000, 3000):
        writer = store.writer(KEY, "video/mp4")
        writer.write(blob(size))
        writer.commit()
        assert store.size_of(KEY) == size


def test_local_files_are_private_and_keys_stay_inside(tmp_path: Path):
    store = LocalStore(tmp_path / "deep" / "artifacts")
    writer = store.writer(KEY, "video/mp4")
    writer.write(b"abc")
    writer.commit()
    path = store.path_of(KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (store.root, path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for bad in ("../escape.mp4", "/etc/passwd", "a/../../b"):
        with pytest.raises(ValueError):
            store.path_of(bad)


def test_s3_store_down_is_unavailable_not_a_crash():
    store = S3Store("bucket", "", s3_client(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.writer(KEY, "video/mp4")
    with pytest.raises(StoreUnavailable):
        store.size_of(KEY)


def test_s3_presigned_url_serves_the_object(moto: Moto):
    import httpx

    store = S3Store(moto.new_bucket(), "p", s3_client(moto.url))
    writer = store.writer(KEY, "video/mp4")
    writer.write(b"\x00\x00\x00\x18ftypisom-data")
    writer.commit()
    url = store.presigned_url(KEY, expires_s=60, filename="v.mp4", content_type="video/mp4")
    assert url is not None
    got = httpx.get(url, timeout=10)
    assert got.status_code == 200 and got.content == b"\x00\x00\x00\x18ftypisom-data"
    assert got.headers["content-disposition"] == 'attachment; filename="v.mp4"'
    assert LocalStore(Path("/tmp")).presigned_url(KEY, expires_s=60, filename="v", content_type="video/mp4") is None


def test_store_urls(tmp_path: Path, moto: Moto, settings_env):
    assert parse_store_url("file:///data/artifacts") == ("file", "/data/artifacts", "")
    assert parse_store_url("s3://bucket/a/b/") == ("s3", "bucket", "a/b")
    for bad in ("s3:///x", "gs://bucket", "file://relative"):
        with pytest.raises(ValueError):
            parse_store_url(bad)
    settings_env(REELMILL_S3_ENDPOINT_URL=moto.url)
    local = open_store(tmp_path.as_uri())
    assert isinstance(local, LocalStore) and open_store(tmp_path.as_uri()) is local
    remote = open_store("s3://some-bucket/videos")
    assert isinstance(remote, S3Store) and remote.url == "s3://some-bucket/videos"
