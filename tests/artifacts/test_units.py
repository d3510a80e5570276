"""The small parts: the ftyp check, byte ranges, keys, the store setting, and the byte path (copy_into) on a
local store: checked before anything is kept, hashed on the way, aborted on any failure."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.api.byte_ranges import ByteRange, Unsatisfiable, parse_range
from shared.artifacts.errors import NotMp4, SourceUnavailable, TooLarge
from shared.artifacts.keys import artifact_key
from shared.artifacts.mp4 import ftyp_brand
from shared.artifacts.stores.local import LocalStore
from shared.artifacts.transfer import copy_into
from shared.settings import Settings

MP4_HEAD = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomavc1"


def files_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    ("head", "brand"),
    [
        (MP4_HEAD, b"isom"),
        (struct.pack(">I", 20) + b"ftypqt  " + b"\x00" * 8, b"qt  "),
        (struct.pack(">I", 1) + b"ftypmp42" + b"\x00" * 8, b"mp42"),  # 64-bit box size follows
        (b"<!DOCTYPE html><html>", None),
        (struct.pack(">I", 8) + b"ftypisom" + b"\x00" * 4, None),  # a box too small to hold a brand
        (struct.pack(">I", 24) + b"moovisom" + b"\x00" * 12, None),
        (struct.pack(">I", 24) + b"ftyp\x00\x01\x02\x03" + b"\x00" * 12, None),
        (b"\x00\x00", None),
    ],
)
def test_ftyp_brand(head: bytes, brand: bytes | None):
    assert ftyp_brand(head) == brand


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-99", 1000, ByteRange(0, 99)),
        ("bytes=900-", 1000, ByteRange(900, 999)),
        ("bytes=990-5000", 1000, ByteRange(990, 999)),
        ("bytes=-10", 1000, ByteRange(990, 999)),
        ("bytes=-5000", 1000, ByteRange(0, 999)),
        (None, 1000, None),
        ("bytes=0-1,5-6", 1000, None),  # several ranges: the whole file
        ("items=0-1", 1000, None),
        ("bytes=9-2", 1000, None),
        ("bytes=-", 1000, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0)])
def test_unsatisfiable_ranges(header, size):
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_keys_are_stable_and_safe():
    assert artifact_key("ten_1", "job_2", 3) == "ten_1/job_2/3.mp4"
    assert artifact_key("../ten", "job/../x", 0) == "_ten/job_.._x/0.mp4"
    with pytest.raises(ValueError):
        artifact_key("..", "job", 0)


def test_store_setting(tmp_path: Path):
    assert Settings(data_dir=tmp_path).effective_artifact_store == (tmp_path / "artifacts").resolve().as_uri()
    assert Settings(artifact_store=str(tmp_path / "x")).effective_artifact_store == (tmp_path / "x").as_uri()
    assert Settings(artifact_store="NONE").effective_artifact_store == "none"
    assert Settings(artifact_store="s3://b/p").effective_artifact_store == "s3://b/p"
    for bad in ("s3://", "gs://bucket/x", "http://host/dir"):
        with pytest.raises(ValidationError, match="REELMILL_ARTIFACT_STORE"):
            Settings(artifact_store=bad)


def chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_copy_hashes_and_publishes_whole(tmp_path: Path):
    store = LocalStore(tmp_path)
    data = MP4_HEAD + bytes(range(256)) * 50
    seen: list[int] = []
    copied = copy_into(chunks(data), store, "a/0.mp4", max_bytes=10**6, tick=seen.append)
    assert copied.sha256 == hashlib.sha256(data).hexdigest() and copied.size == len(data)
    assert copied.content_type == "video/mp4"
    assert (tmp_path / "a/0.mp4").read_bytes() == data
    assert seen[-1] == len(data) and seen == sorted(seen)


def test_not_an_mp4_is_refused_before_anything_is_written(tmp_path: Path):
    store = LocalStore(tmp_path / "s")
    with pytest.raises(NotMp4, match="not an MP4"):
        copy_into(chunks(b"<html><body>Access denied</body></html>" * 10), store, "k.mp4", max_bytes=10**6)
    with pytest.raises(NotMp4, match="only 5 bytes"):
        copy_into([b"\x00\x00\x00\x18f"], store, "k.mp4", max_bytes=10**6)
    assert not (tmp_path / "s").exists()  # the store was never even asked for a writer


def test_a_failure_mid_way_leaves_nothing(tmp_path: Path):
    store = LocalStore(tmp_path)

    def broken() -> Iterator[bytes]:
        yield MP4_HEAD + b"x" * 1000
        raise SourceUnavailable("the connection dropped")

    with pytest.raises(SourceUnavailable):
        copy_into(broken(), store, "k.mp4", max_bytes=10**6)
    with pytest.raises(TooLarge):
        copy_into(chunks(MP4_HEAD + b"x" * 100, 50), store, "k.mp4", max_bytes=64)
    assert files_in(tmp_path) == []


def test_quicktime_brand_is_stored_as_quicktime(tmp_path: Path):
    head = struct.pack(">I", 20) + b"ftypqt  " + b"\x00" * 8
    copied = copy_into([head, b"rest"], LocalStore(tmp_path), "q.mov", max_bytes=100)
    assert copied.content_type == "video/quicktime"
