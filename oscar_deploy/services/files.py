"""Files in the cluster's MinIO buckets, through boto3's S3 client with the cluster's credentials.

Locations are written `bucket/key` (or `bucket/prefix/` for a folder), as in an FDL input or output path.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oscar_deploy.services.stored import BUCKET_NAME
from oscar_deploy.state.endpoints import MINIO_ENDPOINT_ENV, ClusterAccess, MinioAccess
from oscar_deploy.support.errors import OperationError, SharedFailure, UserInputError, shown
from oscar_deploy.support.files import open_user_binary

if TYPE_CHECKING:
    from oscar_deploy.services.client import OscarClient

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 120
FIRST_POLL_INTERVAL = 0.1
# The ETag of an object stored by one PutObject (not encrypted with SSE-C or SSE-KMS): its content's MD5 in hex, in
# quotes. A multipart upload's ETag is an MD5 of the parts' MD5s with `-<parts>` after it; an encrypted one is not an
# MD5 either (MinIO internal/etag: IsMultipart, IsEncrypted). Any other shape is no MD5 to compare with.
MD5_ETAG = re.compile(r'"?([0-9a-fA-F]{32})"?')


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: str


def split_location(location: str) -> tuple[str, str]:
    """`bucket/some/key` -> ("bucket", "some/key"); `bucket` -> ("bucket", "")."""
    cleaned = location.strip().lstrip("/")
    if cleaned.startswith("s3://"):
        cleaned = cleaned[len("s3://") :]
    bucket, _, key = cleaned.partition("/")
    if not bucket:
        raise UserInputError(f"{location!r}: write BUCKET/PATH, e.g. cowsay/input/file.txt")
    if not BUCKET_NAME.fullmatch(bucket):
        raise UserInputError(
            f"{shown(location, 80)}: {shown(bucket, 80)} is not a bucket name (3-63 lowercase letters, digits, '.' "
            "and '-'); `oscar-deploy files ls` lists the buckets"
        )
    return bucket, key


class ObjectStore:
    def __init__(self, access: MinioAccess) -> None:
        import boto3
        from botocore.config import Config

        self.access = access
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=access.url,
            aws_access_key_id=access.access_key,
            aws_secret_access_key=access.secret_key,
            region_name=access.region,
            verify=str(access.ca_file) if access.ca_file else True,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},  # MinIO serves buckets as paths, not as host names
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def _call(self, what: str, operation: Callable[..., Any], absent: tuple[str, ...] = (), **kwargs: Any) -> Any:
        """The operation's answer; None when the server answers one of the error codes `absent`."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return operation(**kwargs)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in absent:
                return None
            raise self._failure(what, exc) from None
        except BotoCoreError as exc:
            raise self._failure(what, exc) from None

    def _failure(self, what: str, exc: Exception) -> OperationError:
        """One line for a failed request; a `SharedFailure` when every other request would fail alike: the server not
        reached or its certificate not trusted, the credentials rejected (401, 403), the bucket missing."""
        from botocore.exceptions import ClientError
        from botocore.exceptions import ConnectionError as NotReached

        if not isinstance(exc, ClientError):
            failure = SharedFailure if isinstance(exc, NotReached) else OperationError
            return failure(f"{what} on {self.access.url}: {exc}; check the MinIO address and CA")
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        message = error.get("Message", str(exc))
        hint = {
            "NoSuchBucket": "the bucket does not exist; `oscar-deploy files ls` lists the buckets",
            "NoSuchKey": "no such file; `oscar-deploy files ls BUCKET/PREFIX` lists them",
            "404": "no such file or bucket",
            "AccessDenied": "the MinIO credentials may not use this bucket",
            "InvalidAccessKeyId": "the MinIO access key is unknown to the server",
            "SignatureDoesNotMatch": "the MinIO secret key is wrong",
        }.get(code, "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        failure = SharedFailure if status in (401, 403) or code == "NoSuchBucket" else OperationError
        return failure(f"{what} on {self.access.url}: MinIO answered {code}: {message}" + (f"; {hint}" if hint else ""))

    def put_file(self, local: Path, bucket: str, key: str) -> None:
        with open_user_binary(local, "file to upload") as stream:
            self._call(
                f"upload {local} to {bucket}/{key}", self._client.put_object, Bucket=bucket, Key=key, Body=stream
            )

    def holds(self, local: Path, bucket: str, key: str) -> bool:
        """Whether `bucket/key` holds the content of `local` already: same size, and an ETag that is the MD5 of
        `local`. False when unsure (no such object, one the credentials may not read, an ETag that is no MD5), so
        the caller uploads. `local` is read (streaming) only when the size and the ETag's shape match."""
        # HEAD answers have no body, so errors are bare statuses: 404 when absent, 403 also when absent to a user
        # without s3:ListBucket (S3's HeadObject reference); the upload says what is wrong, if anything is.
        answer = self._call(
            f"look up {bucket}/{key}", self._client.head_object, absent=("404", "403"), Bucket=bucket, Key=key
        )
        if answer is None:
            return False
        md5 = MD5_ETAG.fullmatch(str(answer.get("ETag", "")))
        if md5 is None:
            return False
        with open_user_binary(local, "file to upload") as stream:
            if os.fstat(stream.fileno()).st_size != answer.get("ContentLength"):
                return False
            digest = hashlib.file_digest(stream, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()
        return digest == md5.group(1).lower()

    def put_bytes(self, data: bytes, bucket: str, key: str) -> None:
        self._call(f"upload to {bucket}/{key}", self._client.put_object, Bucket=bucket, Key=key, Body=data)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        answer = self._call(f"download {bucket}/{key}", self._client.get_object, Bucket=bucket, Key=key)
        body: bytes = answer["Body"].read()
        return body

    def list_buckets(self) -> list[str]:
        answer = self._call("list buckets", self._client.list_buckets)
        return sorted(str(bucket["Name"]) for bucket in answer.get("Buckets", []))

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            answer = self._call(f"list {bucket}/{prefix}", self._client.list_objects_v2, **kwargs)
            for item in answer.get("Contents", []):
                found.append(ObjectInfo(str(item["Key"]), int(item["Size"]), item["LastModified"].isoformat()))
            if not answer.get("IsTruncated"):
                return found
            token = answer.get("NextContinuationToken")

    def bucket_exists(self, bucket: str) -> bool:
        answer = self._call(
            f"look up bucket {bucket}",
            self._client.head_bucket,
            absent=("404", "NoSuchBucket", "NotFound"),
            Bucket=bucket,
        )
        return answer is not None

    def remove_bucket(self, bucket: str) -> None:
        """Delete every object of `bucket`, then the bucket itself."""
        for item in self.list_objects(bucket):
            self._call(f"delete {bucket}/{item.key}", self._client.delete_object, Bucket=bucket, Key=item.key)
        self._call(f"delete bucket {bucket}", self._client.delete_bucket, Bucket=bucket)

    def wait_for_object(
        self,
        bucket: str,
        prefix: str,
        timeout: float,
        interval: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> ObjectInfo:
        """The first file (not folder marker) under `prefix`, polling until `timeout` seconds have passed.

        Polls quickly at first and backs off to `interval`, so a fast cluster is not kept waiting.
        """
        deadline = clock() + timeout
        pause = min(FIRST_POLL_INTERVAL, interval)
        while True:
            files = [item for item in self.list_objects(bucket, prefix) if not item.key.endswith("/")]
            if files:
                return files[0]
            if clock() >= deadline:
                raise OperationError(f"no file appeared under {bucket}/{prefix} within {timeout:g} s")
            sleep(min(pause, max(deadline - clock(), 0.0)))
            pause = min(pause * 2, interval)


def minio_access_from_config(config: dict[str, Any], url: str | None, ca_file: Path | None) -> MinioAccess:
    """MinIO access from OSCAR's `GET /system/config` answer (`minio_provider`), as upstream's CLI gets it.

    OSCAR reports its in-cluster MinIO address (e.g. http://minio.minio:9000), which this machine usually cannot
    resolve; `url` (OSCAR_MINIO_ENDPOINT) replaces it.
    """
    provider = config.get("minio_provider")
    if not isinstance(provider, dict) or not provider.get("access_key") or not provider.get("secret_key"):
        raise OperationError("/system/config: OSCAR did not hand out MinIO credentials for this user")
    endpoint = url or str(provider.get("endpoint") or "")
    if not endpoint:
        raise UserInputError(f"MinIO address unknown; set {MINIO_ENDPOINT_ENV} to its S3 URL")
    return MinioAccess(
        url=endpoint.rstrip("/"),
        access_key=str(provider["access_key"]),
        secret_key=str(provider["secret_key"]),
        region=str(provider.get("region") or "us-east-1"),
        ca_file=ca_file,
    )


def object_store_for(access: ClusterAccess, client: OscarClient) -> ObjectStore:
    """The cluster's MinIO: from the state or OSCAR_MINIO_* variables, else with the keys OSCAR hands out."""
    if access.minio is not None:
        return ObjectStore(access.minio)
    return ObjectStore(minio_access_from_config(client.config(), access.minio_url_hint, access.oscar.ca_file))


def upload_key(destination_key: str, local: Path, several: bool) -> str:
    """Key of an uploaded file: the destination itself, or destination folder + file name."""
    if not destination_key or destination_key.endswith("/") or several:
        folder = destination_key if not destination_key or destination_key.endswith("/") else destination_key + "/"
        return f"{folder}{local.name}"
    return destination_key
