"""An S3-compatible bucket store (AWS S3, MinIO, R2, Ceph...) through boto3.

An object is written as a multipart upload, one part in memory at a time, and published by completing the upload;
until then nothing is visible under its key, and a failed copy aborts the upload so no parts are left behind.
Credentials come the standard AWS way (environment, shared config files, instance or pod roles);
`REELMILL_S3_ENDPOINT_URL` points the client at a store that is not AWS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.artifacts.errors import StoreFull, StoreUnavailable
from shared.artifacts.stores.base import READ_CHUNK

log = logging.getLogger(__name__)
PART_SIZE = 8 * 1024 * 1024  # S3 wants >= 5 MiB per part but the last; 8 MiB parts take 80 GB in 10,000 parts
FULL_CODES = frozenset({"XMinioStorageFull", "QuotaExceeded", "InsufficientStorage", "StorageFull", "507"})
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def store_error(exc: Exception, doing: str) -> StoreFull | StoreUnavailable:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in FULL_CODES or status == "507":
            return StoreFull(f"the artifact bucket is full ({doing}: {code or status})")
        return StoreUnavailable(f"the artifact bucket refused {doing} ({code or 'HTTP ' + status})")
    return StoreUnavailable(f"the artifact bucket is unreachable ({doing}: {exc.__class__.__name__})")


def s3_client(endpoint_url: str | None) -> Any:
    session = boto3.session.Session()
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=120,
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        signature_version="s3v4",
    )
    region = session.region_name or "us-east-1"
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


class S3Writer:
    def __init__(self, client: Any, bucket: str, key: str, content_type: str) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        try:
            made = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise store_error(exc, "starting the upload") from exc
        self._upload_id: str | None = made["UploadId"]
        self._parts: list[dict[str, Any]] = []
        self._buffer = bytearray()

    def write(self, chunk: bytes) -> None:
        """Fill the part buffer; each full part is uploaded as is (no copy), then a fresh buffer starts."""
        view = memoryview(chunk)
        while view:
            room = PART_SIZE - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == PART_SIZE:
                part, self._buffer = self._buffer, bytearray()
                self._upload(part)

    def commit(self) -> None:
        if self._buffer or not self._parts:
            part, self._buffer = self._buffer, bytearray()
            self._upload(part)
        try:
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise store_error(exc, "completing the upload") from exc
        self._upload_id = None

    def abort(self) -> None:
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)
        except (BotoCoreError, ClientError) as exc:  # the bucket's lifecycle rule for incomplete uploads clears it
            log.warning("could not abort the upload of %s: %s", self._key, exc.__class__.__name__)

    def _upload(self, part: bytearray) -> None:
        number = len(self._parts) + 1
        try:
            reply = self._client.upload_part(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=part
            )
        except (BotoCoreError, ClientError) as exc:
            raise store_error(exc, f"uploading part {number}") from exc
        self._parts.append({"ETag": reply["ETag"], "PartNumber": number})


class S3Store:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def writer(self, key: str, content_type: str) -> S3Writer:
        return S3Writer(self.client, self.bucket, self.object_key(key), content_type)

    def size_of(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in MISSING_CODES:
                return None
            raise store_error(exc, "looking the object up") from exc
        except BotoCoreError as exc:
            raise store_error(exc, "looking the object up") from exc
        return int(head["ContentLength"])

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        wanted = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key), Range=wanted)["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise store_error(exc, "reading") from exc
        try:
            yield from body.iter_chunks(READ_CHUNK)
        except BotoCoreError as exc:
            raise store_error(exc, "reading") from exc
        finally:
            body.close()

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise store_error(exc, "deleting") from exc

    def presigned_url(self, key: str, *, expires_s: int, filename: str, content_type: str) -> str | None:
        params = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        }
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s))
