"""`ObjectStore.holds`: whether an object holds a local file's content already, from its HEAD answer alone.

The answers are botocore's own Stubber (botocore.stub), which checks each stubbed answer against the S3 model; the
real S3 server (moto) cannot give some of these shapes (an encrypted object's ETag, a 403 to HEAD, a 500).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from oscar_deploy.services.files import ObjectStore
from oscar_deploy.state.endpoints import MinioAccess
from oscar_deploy.support.errors import OperationError, UserInputError

URL = "http://127.0.0.1:9"  # nothing listens: the Stubber answers before anything is sent
CONTENT = b"the same bytes"
MD5 = hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()


@pytest.fixture
def store() -> Iterator[tuple[ObjectStore, Stubber]]:
    objects = ObjectStore(MinioAccess(url=URL, access_key="key", secret_key="secret"))
    with Stubber(objects._client) as stubber:
        yield objects, stubber
        stubber.assert_no_pending_responses()


def _head(stubber: Stubber, etag: str, size: int) -> None:
    answer: dict[str, Any] = {"ETag": etag, "ContentLength": size}
    stubber.add_response("head_object", answer, {"Bucket": "photos", "Key": "in/a.bin"})


@pytest.fixture
def local(tmp_path: Path) -> Path:
    path = tmp_path / "a.bin"
    path.write_bytes(CONTENT)
    return path


@pytest.mark.parametrize(
    ("etag", "size", "same"),
    [
        (f'"{MD5}"', len(CONTENT), True),  # PutObject: the MD5 in hex, quoted
        (f'"{MD5.upper()}"', len(CONTENT), True),
        (MD5, len(CONTENT), True),
        (f'"{MD5}"', len(CONTENT) + 1, False),  # the MD5, but another size: not this content
        (f'"{MD5}-1"', len(CONTENT), False),  # multipart: no MD5 of the content
        (f'"{MD5[:-1]}"', len(CONTENT), False),
        (f'"{MD5}0"', len(CONTENT), False),
        (f'"{"0" * 32}"', len(CONTENT), False),  # SSE-C or SSE-KMS: 32 hex digits, not the content's MD5
        ('"' + "e" * 40 + '"', len(CONTENT), False),
    ],
)
def test_same_content_only_with_the_size_and_an_md5_etag(
    store: tuple[ObjectStore, Stubber], local: Path, etag: str, size: int, same: bool
) -> None:
    objects, stubber = store
    _head(stubber, etag, size)
    assert objects.holds(local, "photos", "in/a.bin") is same


def test_an_empty_file_and_an_empty_object(store: tuple[ObjectStore, Stubber], tmp_path: Path) -> None:
    objects, stubber = store
    (tmp_path / "empty").write_bytes(b"")
    _head(stubber, '"d41d8cd98f00b204e9800998ecf8427e"', 0)  # the MD5 of nothing
    assert objects.holds(tmp_path / "empty", "photos", "in/a.bin") is True


@pytest.mark.parametrize("status", [404, 403])
def test_no_object_to_compare_with_means_upload(store: tuple[ObjectStore, Stubber], status: int) -> None:
    """HEAD answers a bare status: 404 when absent, 403 also when absent to a user without s3:ListBucket. The local
    file is not read (it need not even exist here)."""
    objects, stubber = store
    stubber.add_client_error("head_object", str(status), "", status, expected_params={"Bucket": "photos", "Key": "x"})
    assert objects.holds(Path("/nonexistent/file"), "photos", "x") is False


def test_a_server_error_on_the_look_up_is_one_line(store: tuple[ObjectStore, Stubber], local: Path) -> None:
    objects, stubber = store
    stubber.add_client_error("head_object", "500", "Internal Server Error", 500)
    with pytest.raises(OperationError) as caught:
        objects.holds(local, "photos", "in/a.bin")
    assert str(caught.value) == f"look up photos/in/a.bin on {URL}: MinIO answered 500: Internal Server Error"


def test_the_local_file_is_read_through_the_guarded_reader(store: tuple[ObjectStore, Stubber], tmp_path: Path) -> None:
    """A file swapped for a folder between the command's check and the comparison is refused, not read."""
    objects, stubber = store
    (tmp_path / "swapped").mkdir()
    _head(stubber, f'"{MD5}"', len(CONTENT))
    with pytest.raises(UserInputError, match="is a folder, not a regular file; pass a regular file as the file to"):
        objects.holds(tmp_path / "swapped", "photos", "in/a.bin")
