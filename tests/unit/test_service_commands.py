"""`oscar-deploy service ...` and `files ...` end to end: the CLI, the endpoints contract with the platform phase,
foreign clusters through flags and environment, and the oscar-cli config entry."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar_deploy.state.endpoints import (
    PlatformEndpoints,
    access_from_state,
    read_endpoints,
    write_endpoints,
)
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import UserInputError
from tests.unit.fake_oscar import FakeOscar
from tests.unit.oscar_env import RefusingS3, S3Server, write_cluster_state

COWSAY = """\
functions:
  oscar:
  - oscar:
      name: {{ name | default("cowsay") }}
      image: ghcr.io/grycap/cowsay
      memory: {{ memory | default("256Mi") }}
      script: cowsay.sh
      input:
      - storage_provider: minio.default
        path: cowsay-files/in
      output:
      - storage_provider: minio.default
        path: cowsay-files/out
      environment:
        variables: {GREETING: moo}
"""


@pytest.fixture
def fake(s3_server: S3Server) -> Iterator[FakeOscar]:
    """The shared fake, with a processor that answers like the cowsay service."""
    s3_server.reset()
    server = FakeOscar(s3_endpoint=s3_server.url, processor=lambda data: b"moo: " + data).start()
    yield server
    server.stop()
    assert server.dropped == [], f"keys OSCAR v4.1.2 would drop silently: {server.dropped}"


@pytest.fixture
def demo(cli, fake: FakeOscar) -> FakeOscar:
    """A cluster `demo` in the state folder, as `up` leaves it, whose OSCAR is the fake."""
    write_cluster_state("demo", fake)
    (cli.cwd / "cowsay.yaml").write_text(COWSAY)
    (cli.cwd / "cowsay.sh").write_text("#!/bin/sh\ncowsay < $INPUT_FILE_PATH\n")
    return fake


def test_apply_creates_then_leaves_alone_then_updates(cli, demo: FakeOscar) -> None:
    first = cli("service", "apply", "cowsay.yaml", "--cluster", "demo")
    assert first.exit_code == 0, first.output
    assert first.stdout == f"cowsay: created on {demo.url}\n"
    assert cli("service", "apply", "cowsay.yaml").stdout == f"cowsay: unchanged on {demo.url}\n"
    (cli.cwd / "values.yaml").write_text("memory: 1Gi\n")
    third = cli("service", "apply", "cowsay.yaml", "-f", "values.yaml")
    assert third.stdout == f"cowsay: updated on {demo.url} (changed: memory)\n"
    assert demo.services["cowsay"]["memory"] == "1Gi"
    assert demo.services["cowsay"]["script"] == "#!/bin/sh\ncowsay < $INPUT_FILE_PATH\n"
    cli("service", "apply", "cowsay.yaml", "--set", "name=cowsay-two")
    assert sorted(demo.services) == ["cowsay", "cowsay-two"]


SECRETS_AND_PROVIDERS = """\
functions:
  oscar:
  - oscar:
      name: archiver
      image: ghcr.io/example/archiver
      script: cowsay.sh
      input:
      - storage_provider: minio
        path: in
      output:
      - storage_provider: s3.aws
        path: archive-bucket/{{ folder | default("daily") }}
      environment:
        secrets:
          AWS_PROFILE_TOKEN: '{{ env("ARCHIVER_TOKEN") }}'
storage_providers:
  s3:
    aws:
      access_key: AKIAEXAMPLE
      secret_key: '{{ env("ARCHIVER_AWS_SECRET") }}'
      region: eu-west-1
"""


def test_apply_leaves_a_service_with_providers_and_secrets_alone(
    cli, demo: FakeOscar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What GET returns (create.go: secrets blanked, minio.default added, the server's labels, Go's zero values)
    is compared with what apply sends, normalised the way the create handler stores it."""
    (cli.cwd / "archiver.yaml").write_text(SECRETS_AND_PROVIDERS)
    monkeypatch.setenv("ARCHIVER_TOKEN", "token-one")
    monkeypatch.setenv("ARCHIVER_AWS_SECRET", "aws-secret-one")
    assert cli("service", "apply", "archiver.yaml").stdout == f"archiver: created on {demo.url}\n"
    assert demo.services["archiver"]["input"] == [{"storage_provider": "minio", "path": "archiver/in"}]
    assert cli("service", "apply", "archiver.yaml").stdout == f"archiver: unchanged on {demo.url}\n"
    monkeypatch.setenv("ARCHIVER_TOKEN", "token-two")
    changed_secret = cli("service", "apply", "archiver.yaml")
    assert changed_secret.stdout == f"archiver: updated on {demo.url} (changed: environment)\n"
    assert "token-two" not in changed_secret.output
    monkeypatch.setenv("ARCHIVER_AWS_SECRET", "aws-secret-two")
    changed_provider = cli("service", "apply", "archiver.yaml")
    assert changed_provider.stdout == f"archiver: updated on {demo.url} (changed: storage_providers)\n"
    moved = cli("service", "apply", "archiver.yaml", "--set", "folder=weekly")
    assert moved.stdout == f"archiver: updated on {demo.url} (changed: output)\n"
    assert cli("service", "apply", "archiver.yaml", "--set", "folder=weekly").stdout.endswith(
        "unchanged on " + demo.url + "\n"
    )
    assert [method for method, *_ in demo.requests if method in ("POST", "PUT")] == ["POST", "PUT", "PUT", "PUT"]


def test_apply_refuses_a_bad_file_before_touching_the_cluster(cli, demo: FakeOscar) -> None:
    (cli.cwd / "bad.yaml").write_text(COWSAY.replace("memory:", "memroy:"))
    result = cli("service", "apply", "bad.yaml")
    assert result.exit_code == 2
    assert "bad.yaml:6: functions.oscar.0.oscar.memroy: unknown key; did you mean 'memory'?" in result.stderr
    assert demo.requests == []


def test_services_for_several_clusters_need_a_choice(cli, demo: FakeOscar) -> None:
    two = COWSAY + "  - edge:\n      name: other\n      image: alpine\n      script: cowsay.sh\n"
    (cli.cwd / "two.yaml").write_text(two)
    result = cli("service", "apply", "two.yaml")
    assert (
        result.exit_code == 2 and "lists services for clusters edge, oscar; pick one with --cluster-id" in result.stderr
    )
    assert cli("service", "apply", "two.yaml", "--cluster-id", "edge").exit_code == 0
    assert sorted(demo.services) == ["other"]
    assert cli("service", "apply", "two.yaml", "--cluster-id", "nowhere").exit_code == 2


def test_a_failed_service_of_several_is_named_and_a_second_apply_picks_up_from_there(cli, demo: FakeOscar) -> None:
    """A POST carries no name in its URL: the error names the FDL file and the service that was not applied."""
    two = COWSAY + "  - oscar:\n      name: second\n      image: alpine\n      script: cowsay.sh\n"
    (cli.cwd / "two.yaml").write_text(two)
    assert cli("service", "apply", "cowsay.yaml").exit_code == 0
    demo.fail("POST", "/system/services", 500, "Error creating the service: quota exceeded")
    failed = cli("service", "apply", "two.yaml")
    assert failed.exit_code == 1
    assert failed.stdout == f"cowsay: unchanged on {demo.url}\n"
    assert failed.stderr == (
        "error: two.yaml: service 'second' (2 of 2) not applied: POST "
        f"{demo.url}/system/services: the server answered 500 Internal Server Error: Error creating the service: "
        "quota exceeded; the services before it are applied, and `service apply` again goes on from here\n"
    )
    demo.failures.clear()
    again = cli("service", "apply", "two.yaml")
    assert again.stdout == f"cowsay: unchanged on {demo.url}\nsecond: created on {demo.url}\n"


def test_list_run_logs_and_delete(cli, demo: FakeOscar, tmp_path: Path) -> None:
    cli("service", "apply", "cowsay.yaml")
    listing = cli("service", "list")
    assert listing.stdout.splitlines() == [
        "NAME    IMAGE                  CPU  MEMORY  INPUT            OUTPUT",
        "cowsay  ghcr.io/grycap/cowsay  0.2  256Mi   cowsay-files/in  cowsay-files/out",
    ]
    as_json = json.loads(cli("service", "list", "--json").stdout)
    assert as_json[0]["name"] == "cowsay" and as_json[0]["token"] == "********"

    piped = cli("service", "run", "cowsay", input="hello")
    assert piped.exit_code == 0 and piped.stdout == "moo: hello"
    (tmp_path / "in.bin").write_bytes(b"\x00\x01 binary")
    to_file = cli("service", "run", "cowsay", "--input", str(tmp_path / "in.bin"), "--output", str(tmp_path / "o"))
    assert to_file.exit_code == 0 and (tmp_path / "o").read_bytes() == b"moo: \x00\x01 binary"
    raw = cli("service", "run", "cowsay", "--raw", input="hi")
    assert raw.stdout == "bW9vOiBoaQ=="

    started = cli("service", "run", "cowsay", "--async", input="in the background")
    assert started.exit_code == 0 and "job started" in started.stderr
    jobs = cli("service", "logs", "cowsay", "--json")
    (job,) = json.loads(jobs.stdout)
    assert job["status"] == "Succeeded"
    assert cli("service", "logs", "cowsay").stdout.startswith(f"{job['name']}  Succeeded  created ")
    log = cli("service", "logs", "cowsay", job["name"])
    assert "moo: in the background" in log.stdout

    assert cli("service", "delete", "cowsay").stdout == f"cowsay: deleted from {demo.url}\n"
    gone = cli("service", "delete", "cowsay")
    assert gone.exit_code == 1 and "no service 'cowsay' to delete" in gone.stderr
    assert cli("service", "list").stdout == f"no services on {demo.url}\n"


def test_delete_goes_on_past_a_name_that_is_already_gone(cli, demo: FakeOscar) -> None:
    """`service delete a b` after a run that deleted `a`: `b` is deleted all the same, and `a` is reported."""
    cli("service", "apply", "cowsay.yaml")
    cli("service", "apply", "cowsay.yaml", "--set", "name=cowsay-two")
    result = cli("service", "delete", "gone", "cowsay", "also-gone", "cowsay-two")
    assert result.stdout == f"cowsay: deleted from {demo.url}\ncowsay-two: deleted from {demo.url}\n"
    assert demo.services == {}
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no services 'gone', 'also-gone' on {demo.url} to delete (the server answered 404 Not Found for "
        "each); the other names were deleted\n"
    )


def _deletes(demo: FakeOscar) -> list[str]:
    return [path.rsplit("/", 1)[-1] for method, path, _, _ in demo.requests if method == "DELETE"]


def test_delete_tries_every_name_past_a_server_error_and_reports_each(cli, demo: FakeOscar) -> None:
    """A 500 for one name used to end the command: the names after it were never tried."""
    for name in ("broken", "cowsay", "moo"):
        cli("service", "apply", "cowsay.yaml", "--set", f"name={name}")
    demo.fail("DELETE", "/system/services/broken", 500, "etcd unavailable\nretry later")
    result = cli("service", "delete", "broken", "cowsay", "gone", "moo", "cowsay")
    assert _deletes(demo) == ["broken", "cowsay", "gone", "moo"]  # each name once, in order
    assert result.stdout == f"cowsay: deleted from {demo.url}\nmoo: deleted from {demo.url}\n"
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: broken: DELETE {demo.url}/system/services/broken: the server answered 500 Internal Server Error: "
        "etcd unavailable\\nretry later\n"
        f"error: gone: DELETE {demo.url}/system/services/gone: no service 'gone' to delete (the server answered 404 "
        "Not Found)\n"
        "error: not deleted: broken; already gone: gone; deleted: cowsay, moo; `service delete` again is safe once "
        "fixed\n"
    )
    assert set(demo.services) == {"broken"}

    demo.failures.clear()
    again = cli("service", "delete", "broken", "cowsay")
    assert again.stdout == f"broken: deleted from {demo.url}\n" and demo.services == {}
    assert again.exit_code == 1
    assert again.stderr == (
        f"error: DELETE {demo.url}/system/services/cowsay: no service 'cowsay' to delete (the server answered 404 "
        "Not Found)\n"
    )


def test_delete_of_one_name_says_what_the_server_answered(cli, demo: FakeOscar) -> None:
    cli("service", "apply", "cowsay.yaml")
    demo.fail("DELETE", "/system/services/cowsay", 503, "draining")
    result = cli("service", "delete", "cowsay")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: DELETE {demo.url}/system/services/cowsay: the server answered 503 Service Unavailable: draining\n"
    )


def test_delete_stops_at_rejected_credentials(cli, demo: FakeOscar) -> None:
    """A 401 would come back for every other name: the names after it are not tried."""
    for name in ("cowsay", "moo", "third"):
        cli("service", "apply", "cowsay.yaml", "--set", f"name={name}")
    demo.fail("DELETE", "/system/services/moo", 401, "")
    result = cli("service", "delete", "cowsay", "moo", "third")
    assert _deletes(demo) == ["cowsay", "moo"]
    assert result.stdout == f"cowsay: deleted from {demo.url}\n"
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: moo: DELETE {demo.url}/system/services/moo: the server answered 401 Unauthorized: credentials "
        "rejected (user 'oscar'); check the password (state secret oscar_password, or OSCAR_PASSWORD) or the token\n"
        "error: not deleted: moo; not tried: third; deleted: cowsay; `service delete` again is safe once fixed\n"
    )
    demo.fail("DELETE", "/system/services/", 401, "")
    first = cli("service", "delete", "moo", "third")
    assert _deletes(demo)[2:] == ["moo"]
    assert first.stderr.splitlines()[-1] == (
        "error: not deleted: moo; not tried: third; deleted: none; `service delete` again is safe once fixed"
    )
    assert set(demo.services) == {"moo", "third"}


def test_delete_stops_when_the_server_cannot_be_reached(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from oscar_deploy.cli.commands import service_commands
    from oscar_deploy.services.client import OscarClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    pauses: list[float] = []
    monkeypatch.setattr(service_commands, "connect", lambda access: OscarClient(access.oscar, sleep=pauses.append))
    monkeypatch.setenv("OSCAR_PASSWORD", "x")
    url = f"http://127.0.0.1:{port}"
    result = cli("service", "delete", "cowsay", "moo", "--endpoint", url)
    assert pauses == [1.0, 2.0, 3.0]  # one name's retries, not the second's
    assert (result.exit_code, result.stdout) == (1, "")
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: cowsay: DELETE {url}/system/services/cowsay: cannot connect after 4 attempts")
    assert lines[1:] == [
        "error: not deleted: cowsay; not tried: moo; deleted: none; `service delete` again is safe once fixed"
    ]


def test_delete_stops_at_a_server_certificate_it_does_not_trust(
    cli, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS with the cluster's own CA, and no ca_file in endpoints.yaml: the first name fails the handshake, is not
    retried, and the names after it are not tried (every one would fail the same way)."""
    from oscar_deploy.cli.commands import service_commands
    from oscar_deploy.services.client import OscarClient
    from tests.unit.test_oscar_client import _self_signed_ca_and_server

    _ca_file, context = _self_signed_ca_and_server(tmp_path)
    server = FakeOscar(s3_endpoint=s3_server.url, ssl_context=context).start()
    tried: list[str] = []

    def recording_client(access: Any) -> OscarClient:
        client = OscarClient(access.oscar, sleep=lambda _: pytest.fail("a TLS failure is not retried"))
        real_delete = client.delete_service

        def delete_service(name: str) -> None:
            tried.append(name)
            real_delete(name)

        client.delete_service = delete_service  # type: ignore[method-assign]
        return client

    monkeypatch.setattr(service_commands, "connect", recording_client)
    try:
        write_cluster_state("demo", server)
        result = cli("service", "delete", "cowsay", "moo")
    finally:
        server.stop()
    assert tried == ["cowsay"]
    assert server.requests == []
    assert (result.exit_code, result.stdout) == (1, "")
    # OpenSSL's reason ends with the line of CPython's _ssl.c that raised it, which differs between builds.
    assert re.fullmatch(
        re.escape(
            f"error: cowsay: DELETE {server.url}/system/services/cowsay: TLS certificate not trusted ([SSL: "
            "CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:"
        )
        + r"\d+"
        + re.escape(
            ")); for a self-signed cluster pass its CA with --ca-file (or ca_file in endpoints.yaml)\n"
            "error: not deleted: cowsay; not tried: moo; deleted: none; `service delete` again is safe once fixed\n"
        ),
        result.stderr,
    )


def test_delete_checks_every_name_before_deleting_any(cli, demo: FakeOscar) -> None:
    cli("service", "apply", "cowsay.yaml")
    result = cli("service", "delete", "cowsay", "Bad_Name")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: service 'Bad_Name': not a service name (lowercase letters, digits and '-', not at either end)\n"
    )
    assert _deletes(demo) == [] and set(demo.services) == {"cowsay"}


@pytest.mark.parametrize(
    ("arguments", "path"),
    [(["service", "list"], "/system/services"), (["service", "logs", "cowsay"], "/system/logs/cowsay")],
)
def test_an_answer_that_is_not_json_is_one_clear_line(cli, demo: FakeOscar, arguments: list[str], path: str) -> None:
    """A 200 with an HTML page (the web UI, a login proxy in front of the API) is not taken for the API's answer."""
    demo.fail("GET", path, 200, "<html><title>Sign in</title></html>")
    result = cli(*arguments, "--cluster", "demo")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: GET {demo.url}{path}: the server answered 200 OK, but not with JSON "
        "('<html><title>Sign in</title></html>'); check that the address is the OSCAR API itself, not its web UI "
        "or a login page in front of it\n"
    )


def test_files_put_ls_get(cli, demo: FakeOscar, tmp_path: Path) -> None:
    cli("service", "apply", "cowsay.yaml")
    for name in ("a.txt", "b.txt"):
        (cli.cwd / name).write_text(f"file {name}")
    put = cli("files", "put", "a.txt", "b.txt", "cowsay-files/in")
    assert put.exit_code == 0, put.output
    assert put.stdout.splitlines() == ["a.txt -> cowsay-files/in/a.txt", "b.txt -> cowsay-files/in/b.txt"]
    assert "cowsay-files" in cli("files", "ls").stdout.split()
    listed = json.loads(cli("files", "ls", "cowsay-files/in/", "--json").stdout)
    assert [item["key"] for item in listed] == ["in/", "in/a.txt", "in/b.txt"]

    # the fake's job writes the output, as the MinIO webhook flow does; wait for it through the same store
    from oscar_deploy.services.files import ObjectStore
    from oscar_deploy.state.endpoints import access_from_state

    store = ObjectStore(access_from_state(ClusterState("demo")).minio)  # type: ignore[arg-type]
    store.wait_for_object("cowsay-files", "out/b.txt", timeout=5, interval=0.05)
    got = cli("files", "get", "cowsay-files/out/b.txt.out", str(tmp_path))
    assert got.exit_code == 0 and (tmp_path / "b.txt.out").read_text() == "moo: file b.txt"
    printed = cli("files", "get", "cowsay-files/out/b.txt.out", "-")
    assert printed.stdout == "moo: file b.txt"
    folder = cli("files", "get", "cowsay-files/out/")
    assert folder.exit_code == 2 and "name a file" in folder.stderr
    missing = cli("files", "get", "cowsay-files/out/none.txt")
    assert missing.exit_code == 1 and "MinIO answered NoSuchKey" in missing.stderr
    assert cli("files", "put", "a.txt").exit_code == 2


def test_files_put_again_skips_what_the_bucket_holds_already(cli, demo: FakeOscar) -> None:
    """Each upload to an input path starts the service's job (MinIO notifies OSCAR of every PUT): running `files put`
    again must not upload, and so run, the files that made it the first time."""
    cli("service", "apply", "cowsay.yaml")
    files = {"a.txt": b"file a", "empty.txt": b"", "same-size.txt": b"aaaa", "grown.txt": b"abc"}
    for name, content in files.items():
        (cli.cwd / name).write_bytes(content)
    first = cli("files", "put", *files, "cowsay-files/in/")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [f"{name} -> cowsay-files/in/{name}" for name in files]

    def mark(name: str) -> None:  # stored again with the same content, and a mark an upload of ours would drop
        demo.s3.put_object(Bucket="cowsay-files", Key=f"in/{name}", Body=files[name], Metadata={"mark": "first"})

    def stored(name: str) -> tuple[bytes, str | None]:
        answer = demo.s3.get_object(Bucket="cowsay-files", Key=f"in/{name}")
        return answer["Body"].read(), answer["Metadata"].get("mark")

    for name in files:
        mark(name)
    (cli.cwd / "same-size.txt").write_bytes(b"bbbb")
    (cli.cwd / "grown.txt").write_bytes(b"abcd")
    again = cli("files", "put", *files, "cowsay-files/in/")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "a.txt: already in cowsay-files/in/a.txt (same content), skipped",
        "empty.txt: already in cowsay-files/in/empty.txt (same content), skipped",
        "same-size.txt -> cowsay-files/in/same-size.txt",
        "grown.txt -> cowsay-files/in/grown.txt",
    ]
    assert [stored(name) for name in files] == [
        (b"file a", "first"),
        (b"", "first"),
        (b"bbbb", None),
        (b"abcd", None),
    ]

    forced = cli("files", "put", "a.txt", "empty.txt", "cowsay-files/in/", "--again")
    assert forced.stdout.splitlines() == ["a.txt -> cowsay-files/in/a.txt", "empty.txt -> cowsay-files/in/empty.txt"]
    assert [stored(name) for name in ("a.txt", "empty.txt")] == [(b"file a", None), (b"", None)]


def test_files_put_uploads_over_a_multipart_object(cli, demo: FakeOscar) -> None:
    """A multipart upload's ETag is no MD5 of the content (`<md5 of the parts' md5s>-<parts>`): no proof of the
    same content, so the file is uploaded; its new ETag is the MD5, and the next run skips it."""
    cli("service", "apply", "cowsay.yaml")
    content = b"the same bytes"
    (cli.cwd / "big.bin").write_bytes(content)
    upload = demo.s3.create_multipart_upload(Bucket="cowsay-files", Key="in/big.bin")["UploadId"]
    part = demo.s3.upload_part(Bucket="cowsay-files", Key="in/big.bin", UploadId=upload, PartNumber=1, Body=content)
    demo.s3.complete_multipart_upload(
        Bucket="cowsay-files",
        Key="in/big.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    etag = demo.s3.head_object(Bucket="cowsay-files", Key="in/big.bin")["ETag"]
    assert etag.endswith('-1"')  # the shape MinIO and S3 give a multipart object
    put = cli("files", "put", "big.bin", "cowsay-files/in/")
    assert put.stdout == "big.bin -> cowsay-files/in/big.bin\n"
    assert demo.s3.head_object(Bucket="cowsay-files", Key="in/big.bin")["ETag"] != etag
    again = cli("files", "put", "big.bin", "cowsay-files/in/")
    assert again.stdout == "big.bin: already in cowsay-files/in/big.bin (same content), skipped\n"


def test_files_put_to_a_missing_bucket_says_so(cli, demo: FakeOscar) -> None:
    """The look-up before the upload finds nothing (404) and the upload names the problem."""
    (cli.cwd / "a.txt").write_text("a")
    result = cli("files", "put", "a.txt", "no-such-bucket/in/")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: upload a.txt to no-such-bucket/in/a.txt on {demo.s3_endpoint}: MinIO answered NoSuchBucket: The "
        "specified bucket does not exist; the bucket does not exist; `oscar-deploy files ls` lists the buckets\n"
    )
    (cli.cwd / "b.txt").write_text("b")
    several = cli("files", "put", "a.txt", "b.txt", "no-such-bucket/in/")
    assert several.stderr.splitlines()[1:] == [  # every file goes to that bucket: the others are not tried
        "error: 0 uploaded, 0 skipped as same content, 1 failed, 1 not tried; once fixed, `files put` again uploads "
        "only what is not there"
    ]


def test_files_put_stops_when_minio_cannot_be_reached(cli, demo: FakeOscar) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again below: nothing listens there
    write_cluster_state("demo", demo, minio_url=url)
    for name in ("a.txt", "b.txt"):
        (cli.cwd / name).write_text(name)
    result = cli("files", "put", "a.txt", "b.txt", "cowsay-files/in/")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: a.txt: look up cowsay-files/in/a.txt on {url}: Could not connect to the endpoint URL: "
        f'"{url}/cowsay-files/in/a.txt"; check the MinIO address and CA\n'
        "error: 0 uploaded, 0 skipped as same content, 1 failed, 1 not tried; once fixed, `files put` again uploads "
        "only what is not there\n"
    )


@pytest.fixture
def refusing(demo: FakeOscar) -> Iterator[RefusingS3]:
    """The cluster `demo`, its MinIO behind a `RefusingS3`."""
    double = RefusingS3(demo.s3_endpoint)
    write_cluster_state("demo", demo, minio_url=double.url)
    yield double
    double.stop()


def _puts(refusing: RefusingS3) -> list[str]:
    return [path for method, path in refusing.seen if method == "PUT"]


def test_files_put_goes_on_past_a_file_the_server_refuses_and_reports_each(
    cli, demo: FakeOscar, refusing: RefusingS3
) -> None:
    """A 507 or a refused object used to end the command: the files after it were never uploaded."""
    cli("service", "apply", "cowsay.yaml")
    names = ("same.txt", "full.txt", "a.txt", "big.bin", "b.txt")
    for name in names:
        (cli.cwd / name).write_text(f"file {name}")
    demo.s3.put_object(Bucket="cowsay-files", Key="in/same.txt", Body=b"file same.txt")
    storage_full = (
        "Storage backend has reached its minimum free drive threshold. Please delete a few objects to proceed."
    )
    refusing.refuse("PUT", "/cowsay-files/in/full.txt", 507, "XMinioStorageFull", storage_full)
    too_large = "Your proposed upload exceeds the maximum allowed object size."
    refusing.refuse("PUT", "/cowsay-files/in/big.bin", 400, "EntityTooLarge", too_large)
    result = cli("files", "put", *names, "a.txt", "cowsay-files/in/")
    assert _puts(refusing) == [f"/cowsay-files/in/{name}" for name in names[1:]]  # each file once, in order
    assert result.stdout.splitlines() == [
        "same.txt: already in cowsay-files/in/same.txt (same content), skipped",
        "a.txt -> cowsay-files/in/a.txt",
        "b.txt -> cowsay-files/in/b.txt",
    ]
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: full.txt: upload full.txt to cowsay-files/in/full.txt on {refusing.url}: MinIO answered "
        f"XMinioStorageFull: {storage_full}\n"
        f"error: big.bin: upload big.bin to cowsay-files/in/big.bin on {refusing.url}: MinIO answered EntityTooLarge: "
        f"{too_large}\n"
        "error: 2 uploaded, 1 skipped as same content, 2 failed, 0 not tried; once fixed, `files put` again uploads "
        "only what is not there\n"
    )

    refusing.refusals.clear()
    again = cli("files", "put", *names, "cowsay-files/in/")
    assert (again.exit_code, again.stderr) == (0, "")
    assert [line for line in again.stdout.splitlines() if "skipped" not in line] == [
        "full.txt -> cowsay-files/in/full.txt",
        "big.bin -> cowsay-files/in/big.bin",
    ]


def test_files_put_with_again_says_to_run_it_again_without(cli, demo: FakeOscar, refusing: RefusingS3) -> None:
    cli("service", "apply", "cowsay.yaml")
    for name in ("a.txt", "b.txt"):
        (cli.cwd / name).write_text(name)
    refusing.refuse("PUT", "/cowsay-files/in/a.txt", 500, "InternalError", "We encountered an internal error.")
    result = cli("files", "put", "a.txt", "b.txt", "cowsay-files/in/", "--again")
    assert (result.exit_code, result.stdout) == (1, "b.txt -> cowsay-files/in/b.txt\n")
    assert result.stderr.splitlines()[-1] == (
        "error: 1 uploaded, 0 skipped as same content, 1 failed, 0 not tried; once fixed, `files put` again without "
        "--again uploads only what is not there"
    )


@pytest.mark.parametrize(
    ("status", "code", "message", "answer"),
    [
        # a gateway in front of MinIO: a bare 401, to the look-up before the upload
        (401, "", "", "look up cowsay-files/in/a.txt on {url}: MinIO answered 401: Unauthorized"),
        # MinIO itself: 403 to HEAD (taken as no object: no body says why), then its error document to the upload
        (
            403,
            "InvalidAccessKeyId",
            "The Access Key Id you provided does not exist in our records.",
            "upload a.txt to cowsay-files/in/a.txt on {url}: MinIO answered InvalidAccessKeyId: The Access Key Id you "
            "provided does not exist in our records.; the MinIO access key is unknown to the server",
        ),
    ],
)
def test_files_put_stops_at_rejected_credentials(
    cli, demo: FakeOscar, refusing: RefusingS3, status: int, code: str, message: str, answer: str
) -> None:
    """Rejected credentials would come back for every other file: the files after the first are not tried."""
    cli("service", "apply", "cowsay.yaml")
    for name in ("a.txt", "b.txt", "c.txt"):
        (cli.cwd / name).write_text(name)
    for method in ("HEAD", "PUT"):
        refusing.refuse(method, "/cowsay-files/", status, code, message)
    result = cli("files", "put", "a.txt", "b.txt", "c.txt", "cowsay-files/in/")
    assert [path for _, path in refusing.seen if path.startswith("/cowsay-files/")][-1] == "/cowsay-files/in/a.txt"
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: a.txt: {answer.format(url=refusing.url)}\n"
        "error: 0 uploaded, 0 skipped as same content, 1 failed, 2 not tried; once fixed, `files put` again uploads "
        "only what is not there\n"
    )


def test_a_download_never_replaces_a_local_file_unless_asked(cli, demo: FakeOscar, tmp_path: Path) -> None:
    """`files get BUCKET/cluster.yaml` in the spec's folder used to put the download over the cluster spec, and
    every later command then failed on it; `service run --output` did the same to any file named."""
    cli("service", "apply", "cowsay.yaml")
    (cli.cwd / "upload.txt").write_text("downloaded")
    assert cli("files", "put", "upload.txt", "cowsay-files/in/cluster.yaml").exit_code == 0
    spec = "name: demo\ntarget: local\n"
    (cli.cwd / "cluster.yaml").write_text(spec)
    refused = cli("files", "get", "cowsay-files/in/cluster.yaml")
    assert refused.exit_code == 2
    assert refused.stderr == (
        "error: cluster.yaml: exists, so the local file is not replaced; pass --force to replace it, "
        "or name another local file\n"
    )
    assert (cli.cwd / "cluster.yaml").read_text() == spec
    (cli.cwd / "folder").mkdir()
    (cli.cwd / "folder" / "cluster.yaml").write_text(spec)
    into_folder = cli("files", "get", "cowsay-files/in/cluster.yaml", "folder")
    assert into_folder.exit_code == 2 and "error: folder/cluster.yaml: exists, so the local" in into_folder.stderr
    (cli.cwd / "link").symlink_to("cluster.yaml")
    through_link = cli("files", "get", "cowsay-files/in/cluster.yaml", "link")
    assert through_link.exit_code == 2 and through_link.stderr.startswith("error: link: exists, so the local file")
    assert (cli.cwd / "cluster.yaml").read_text() == spec and (cli.cwd / "link").is_symlink()
    forced = cli("files", "get", "cowsay-files/in/cluster.yaml", "other.yaml", "--force")
    assert forced.exit_code == 0 and (cli.cwd / "other.yaml").read_text() == "downloaded"
    (cli.cwd / "other.yaml").write_text("old")
    replaced = cli("files", "get", "cowsay-files/in/cluster.yaml", "other.yaml", "--force", "--cluster", "demo")
    assert replaced.exit_code == 0 and (cli.cwd / "other.yaml").read_text() == "downloaded"

    (tmp_path / "result").write_text("keep me")
    asked = len(demo.requests)
    run = cli("service", "run", "cowsay", "--output", str(tmp_path / "result"), input="hi")
    assert run.exit_code == 2
    assert run.stderr == (
        f"error: {tmp_path / 'result'}: exists, so the --output file is not replaced; pass --force to replace it, "
        "or name another --output file\n"
    )
    assert (tmp_path / "result").read_text() == "keep me"
    assert len(demo.requests) == asked  # refused before the service ran
    forced_run = cli("service", "run", "cowsay", "--output", str(tmp_path / "result"), "--force", input="hi")
    assert forced_run.exit_code == 0 and (tmp_path / "result").read_text() == "moo: hi"


@pytest.mark.parametrize(
    "arguments",
    [["files", "ls", "bad bucket"], ["files", "put", "a.txt", "Bad_Bucket/in/"], ["files", "get", "x/b.txt"]],
)
def test_a_location_that_names_no_bucket_is_bad_input(cli, demo: FakeOscar, arguments: list[str]) -> None:
    """botocore's own check answered a bucket name with spaces with two lines, a 200-character regex, exit 1 and
    'check the MinIO address'; MinIO's rules (what an FDL path is checked against) are checked first."""
    (cli.cwd / "a.txt").write_text("a")
    result = cli(*arguments)
    bucket = arguments[-1].split("/")[0]
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {arguments[-1]!r}: {bucket!r} is not a bucket name (3-63 lowercase letters, digits, '.' and '-'); "
        "`oscar-deploy files ls` lists the buckets\n"
    )
    assert demo.requests == []


def test_a_local_name_too_long_is_one_line(cli, demo: FakeOscar) -> None:
    """The file name comes from the key: a name longer than the file system takes is bad input, not an OSError."""
    cli("service", "apply", "cowsay.yaml")
    result = cli("files", "get", "cowsay-files/in/" + "a" * 300)
    assert result.exit_code == 2
    assert result.stderr == f"error: {'a' * 200 + '...'!r}: cannot write the local file (File name too long)\n"
    run = cli("service", "run", "cowsay", "--output", "b" * 300, input="hi")
    assert run.exit_code == 2
    assert run.stderr == f"error: {'b' * 200 + '...'!r}: cannot write the --output file (File name too long)\n"


def test_files_ls_escapes_what_a_key_holds(cli, demo: FakeOscar, tmp_path: Path) -> None:
    from oscar_deploy.services.files import ObjectStore
    from oscar_deploy.state.endpoints import access_from_state

    cli("service", "apply", "cowsay.yaml")
    (tmp_path / "a.txt").write_text("a")
    store = ObjectStore(access_from_state(ClusterState("demo")).minio)  # type: ignore[arg-type]
    store.put_file(tmp_path / "a.txt", "cowsay-files", "in/\x1b]0;owned\x07\x1b[2Ja.txt")
    listed = cli("files", "ls", "cowsay-files/in/").stdout
    assert "\x1b" not in listed and "\x07" not in listed
    assert listed.splitlines()[-1].endswith("  cowsay-files/in/\\x1b]0;owned\\x07\\x1b[2Ja.txt")


def test_service_list_and_jobs_escape_what_the_server_says(cli, demo: FakeOscar) -> None:
    cli("service", "apply", "cowsay.yaml")
    demo.services["cowsay"]["image"] = "ghcr.io/grycap/cowsay\x1b[2J"
    listing = cli("service", "list").stdout.splitlines()
    assert listing[1].startswith("cowsay  ghcr.io/grycap/cowsay\\x1b[2J  0.2")
    job = demo.new_job("cowsay", "log")
    job.status = "Succeeded\x1b]0;owned\x07"
    jobs = cli("service", "logs", "cowsay").stdout
    assert f"{job.name}  Succeeded\\x1b]0;owned\\x07  created " in jobs and "\x1b" not in jobs


# --- clusters oscar-deploy did not create ----------------------------------------------------------------------


def test_a_foreign_cluster_with_a_password_from_the_environment(
    cli,
    fake: FakeOscar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (cli.cwd / "cowsay.yaml").write_text(COWSAY)
    (cli.cwd / "cowsay.sh").write_text("#!/bin/sh\n")
    monkeypatch.setenv("OSCAR_PASSWORD", fake.password)
    result = cli("service", "apply", "cowsay.yaml", "--endpoint", fake.url)
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("OSCAR_ENDPOINT", fake.url)
    assert "cowsay" in cli("service", "list").stdout
    # MinIO keys come from OSCAR's /system/config; its in-cluster address is replaced by OSCAR_MINIO_ENDPOINT.
    monkeypatch.setenv("OSCAR_MINIO_ENDPOINT", fake.s3_endpoint)
    assert "cowsay-files/in/" in cli("files", "ls", "cowsay-files").stdout
    monkeypatch.setenv("OSCAR_PASSWORD", "wrong")
    rejected = cli("service", "list")
    assert rejected.exit_code == 1 and "credentials rejected (user 'oscar')" in rejected.stderr


def test_a_foreign_cluster_with_the_password_on_stdin_or_a_bearer_token(
    cli,
    fake: FakeOscar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OSCAR_PASSWORD", raising=False)
    from_stdin = cli("service", "list", "--endpoint", fake.url, "--password-stdin", input=f"{fake.password}\n")
    assert from_stdin.exit_code == 0 and from_stdin.stdout == f"no services on {fake.url}\n"
    data_on_stdin = cli("service", "run", "x", "--endpoint", fake.url, "--password-stdin", input="pw\n")
    assert data_on_stdin.exit_code == 2 and "standard input carries the data here" in data_on_stdin.stderr
    no_password = cli("service", "list", "--endpoint", fake.url)
    assert no_password.exit_code == 2 and "no credentials; set OSCAR_PASSWORD" in no_password.stderr
    fake.oidc_tokens.add("oidc-token")
    monkeypatch.setenv("OSCAR_TOKEN", "oidc-token")
    assert cli("service", "list", "--endpoint", fake.url).exit_code == 0
    assert fake.requests[-1][2] == "bearer"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--password", "secret"], "No such option"),
        (["--user", "admin"], "--user: only used with --endpoint"),
        (["--cluster", "demo", "--endpoint", "https://oscar.example.org"], "give one of them, not both"),
        (
            ["--endpoint", "https://oscar:pw@oscar.example.org"],
            "--endpoint 'https://****@oscar.example.org': carries credentials, which do not belong in a URL",
        ),
        (["--endpoint", "oscar.example.org"], "must be an http(s) URL"),
        (["--cluster", "nowhere"], "cluster 'nowhere': no state folder"),
        (["--cluster", "../elsewhere"], "--cluster '../elsewhere': not a cluster name"),
    ],
)
def test_bad_cluster_options(cli, arguments: list[str], expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSCAR_PASSWORD", "x")
    result = cli("service", "list", *arguments)
    assert result.exit_code == 2
    assert expected in result.output


def test_an_explicit_cluster_wins_over_oscar_endpoint_in_the_environment(
    cli, demo: FakeOscar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--cluster reads the endpoints file the platform phase wrote; $OSCAR_ENDPOINT only stands for --endpoint."""
    monkeypatch.setenv("OSCAR_ENDPOINT", "https://some-other-oscar.example.org")
    monkeypatch.delenv("OSCAR_PASSWORD", raising=False)
    result = cli("service", "list", "--cluster", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"no services on {demo.url}\n"
    both = cli("service", "list", "--cluster", "demo", "--endpoint", demo.url)
    assert both.exit_code == 2 and "--cluster and --endpoint: give one of them, not both" in both.stderr


def test_files_read_the_only_clusters_endpoints(cli, demo: FakeOscar) -> None:
    """With one cluster in the state folder, `files` reaches its MinIO through endpoints.yaml and its secrets."""
    cli("service", "apply", "cowsay.yaml")
    listed = cli("files", "ls")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.split() == ["cowsay-files"]
    assert [path for _, path, _, _ in demo.requests if path == "/system/config"] == []  # no keys asked of OSCAR


def test_which_cluster_when_none_is_named(cli, fake: FakeOscar, monkeypatch: pytest.MonkeyPatch) -> None:
    none = cli("service", "list")
    assert none.exit_code == 2 and "which cluster? pass --cluster NAME (clusters: none yet)" in none.stderr
    write_cluster_state("one", fake)
    assert cli("service", "list").exit_code == 0  # the only cluster there is
    write_cluster_state("two", fake)
    assert "(clusters: one, two)" in cli("service", "list").stderr
    monkeypatch.setenv("OSCAR_DEPLOY_CLUSTER", "two")
    assert cli("service", "list").exit_code == 0
    monkeypatch.delenv("OSCAR_DEPLOY_CLUSTER")
    (cli.cwd / "cluster.yaml").write_text("name: one\ntarget: local\n")
    assert cli("service", "list").exit_code == 0  # ./cluster.yaml names it


# --- the contract with the platform phase ----------------------------------------------------------------------


def test_endpoints_record_round_trip_and_secrets_are_never_invented(state_home: Path) -> None:
    state = ClusterState("demo").ensure()
    with pytest.raises(UserInputError, match=r"endpoints.yaml does not exist yet \(the platform phase writes it\)"):
        access_from_state(state)
    endpoints = PlatformEndpoints(
        oscar_url="https://oscar.203.0.113.10.sslip.io/",
        oscar_user="oscar",
        minio_url="https://minio.203.0.113.10.sslip.io",
        minio_access_key="oscar-deploy",
        ca_file="ca.crt",
    )
    path = write_endpoints(state, endpoints)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text())["oscar_url"] == "https://oscar.203.0.113.10.sslip.io"
    assert read_endpoints(state).minio_access_key == "oscar-deploy"
    (state.path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(UserInputError, match="secret oscar_password is not in"):
        access_from_state(state)
    assert state.secret_names() == []  # reading never generates a secret the cluster does not have
    state.secret("oscar_password")
    state.secret("minio_secret_key")
    access = access_from_state(state)
    assert access.oscar.ca_file == state.path / "ca.crt" and access.minio is not None
    assert access.oscar.password == state.secret("oscar_password")
    assert state.secret("oscar_password") not in repr(access)  # never in a log line or traceback
    assert state.secret("minio_secret_key") not in repr(access)
    with pytest.raises(UserInputError, match=r"oscar_url 'https://\*\*\*\*@oscar.example.org': carries credentials"):
        write_endpoints(state, PlatformEndpoints("https://u:p@oscar.example.org", "oscar", "https://m", "k"))
    path.write_text("oscar_url: https://x\n")
    with pytest.raises(UserInputError, match="expected keys minio_access_key, minio_url, oscar_url, oscar_user"):
        read_endpoints(state)


# --- oscar-cli -----------------------------------------------------------------------------------------------


def test_oscar_cli_config_entry(cli, demo: FakeOscar, tmp_path: Path) -> None:
    config = tmp_path / "home" / ".oscar-cli" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(
        yaml.safe_dump(
            {
                "oscar": {
                    "other": {
                        "endpoint": "https://o",
                        "auth_user": "u",
                        "auth_password": "p",
                        "ssl_verify": True,
                        "memory": "1Gi",
                        "log_level": "DEBUG",
                    }
                },
                "default": "other",
            }
        )
    )
    result = cli("service", "cli-config", "--config-file", str(config))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{config}: cluster demo ({demo.url})\n"
    assert demo.password not in result.output
    written = yaml.safe_load(config.read_text())
    assert written["default"] == "other"  # not taken over without --default
    assert written["oscar"]["other"]["memory"] == "1Gi"
    assert written["oscar"]["demo"] == {
        "endpoint": demo.url,
        "auth_user": "oscar",
        "auth_password": demo.password,
        "ssl_verify": True,
        "memory": "256Mi",
        "log_level": "INFO",
    }
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    again = cli("service", "cli-config", "--config-file", str(config), "--default")
    assert again.stdout.endswith(", the default\n") and yaml.safe_load(config.read_text())["default"] == "demo"

    fresh = tmp_path / "new" / "config.yaml"
    assert cli("service", "cli-config", "--config-file", str(fresh)).stdout.endswith(", the default\n")
    assert stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700
