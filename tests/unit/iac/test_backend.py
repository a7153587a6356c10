"""The state backend: the state folder by default, an s3:// URL from the spec (never with credentials)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from oscar_deploy.iac.backend import backend_url, passphrase_file, projects_dir, pulumi_environment
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import SpecError

CREDENTIALS = (
    "iac.backend: the URL carries credentials; remove them and export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(or AWS_PROFILE) instead"
)


def backend_of(value: str) -> str | None:
    return parse_spec(f"iac:\n  backend: '{value}'\n", "c.yaml").iac.backend


def test_empty_means_the_state_folder() -> None:
    assert parse_spec("name: lab\n").iac.backend is None
    assert backend_of("") is None
    assert backend_of("  ") is None


def test_an_s3_url_is_kept_as_written() -> None:
    url = "s3://team-state?endpoint=https://s3.example.org&s3ForcePathStyle=true&region=eu-west-1"
    assert backend_of(url) == url
    assert backend_of("s3://bucket") == "s3://bucket"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket", CREDENTIALS),
        ("s3://bucket?endpoint=https://minio:hunter2hunter2@s3.example.org", CREDENTIALS),
        ("s3://bucket?endpoint=minio:hunter2hunter2@s3.example.org", CREDENTIALS),
        ("s3://bucket?aws_secret_access_key=wJalrXUtnFEMI", CREDENTIALS),
        ("s3://bucket?accessKeyId=AKIAEXAMPLE", CREDENTIALS),
        ("s3://bucket?session_token=abc", CREDENTIALS),
        (
            "gs://bucket",
            "iac.backend: gs:// is not supported; leave it empty to keep the state in the cluster's "
            "state folder, or use an s3:// URL",
        ),
        (
            "file:///srv/shared",
            "iac.backend: file:// is not supported; leave it empty to keep the state in the "
            "cluster's state folder, or use an s3:// URL",
        ),
        (
            "team-bucket",
            "iac.backend: is not a URL; leave it empty to keep the state in the cluster's state folder, "
            "or use an s3:// URL",
        ),
        (
            "s3://?endpoint=https://s3.example.org",
            "iac.backend: names no bucket; use s3://BUCKET?endpoint=https://s3.example.org",
        ),
        (
            "s3://bucket name",
            "iac.backend: must be one URL without spaces, e.g. s3://bucket?endpoint=https://s3.example.org",
        ),
    ],
)
def test_bad_backends_are_one_line_and_never_echo_a_credential(value: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        backend_of(value)
    assert str(caught.value) == f"c.yaml:2: {message}"
    for secret in ("wJalrXUtnFEMI", "hunter2hunter2", "AKIAEXAMPLE"):
        assert secret not in str(caught.value)


@pytest.mark.parametrize(
    "key",
    # each names one of the words that mark a credential, and no other
    [
        "client_secret",
        "password",
        "X-Amz-Security-Token",
        "X-Amz-Credential",
        "AccessKey",
        "aws_access_key_id",
        "session",
    ],
)
def test_every_word_of_a_credential_key_is_refused(key: str) -> None:
    with pytest.raises(SpecError) as caught:
        backend_of(f"s3://bucket?region=eu-west-1&{key}=hunter2hunter2")
    assert str(caught.value) == f"c.yaml:2: {CREDENTIALS}"
    assert "hunter2hunter2" not in str(caught.value)


def test_default_backend_is_a_private_folder_in_the_state(tmp_path: Path) -> None:
    state = ClusterState("lab", root=tmp_path)
    url = backend_url(state)
    assert url == f"file://{tmp_path.resolve()}/lab/pulumi"
    assert stat.S_IMODE(state.pulumi_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o700
    assert backend_url(state, "s3://team-bucket") == "s3://team-bucket"
    assert projects_dir(state) == state.pulumi_dir / "projects"


def test_the_passphrase_is_generated_once_and_kept_0600(tmp_path: Path) -> None:
    state = ClusterState("lab", root=tmp_path)
    path = passphrase_file(state)
    first = path.read_text()
    assert path == state.pulumi_dir / "passphrase"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.strip() == state.secret("pulumi_passphrase")
    assert len(first.strip()) == 32 and first.strip().isalnum()
    assert passphrase_file(state).read_text() == first
    other = passphrase_file(ClusterState("other", root=tmp_path)).read_text()
    assert other != first, "each cluster has its own passphrase"


def test_the_environment_names_the_file_never_the_passphrase(tmp_path: Path) -> None:
    state = ClusterState("lab", root=tmp_path)
    path = passphrase_file(state)
    env = pulumi_environment(backend_url(state), path)
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(path)
    assert "PULUMI_CONFIG_PASSPHRASE" not in env
    assert env["PULUMI_PYTHON_CMD"] == sys.executable
    assert all(state.secret("pulumi_passphrase") not in value for value in env.values())
