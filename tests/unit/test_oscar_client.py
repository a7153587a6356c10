"""The OSCAR REST client and the MinIO file store, against the fake OSCAR manager and a moto S3 server."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest

from oscar_deploy.services.client import (
    ApplyOutcome,
    JobInfo,
    NoServerlessBackend,
    OscarApiError,
    OscarClient,
    ServiceExists,
    ServiceNotFound,
    decode_run_output,
)
from oscar_deploy.services.files import ObjectStore, minio_access_from_config, split_location, upload_key
from oscar_deploy.services.stored import SECRETS_DIGEST_ANNOTATION, with_secrets_digest
from oscar_deploy.state.endpoints import MinioAccess, OscarAccess
from oscar_deploy.support.errors import OperationError, UserInputError
from tests.unit.fake_oscar import FakeOscar
from tests.unit.oscar_env import S3Server

SERVICE = {
    "name": "cowsay",
    "cluster_id": "oscar",
    "image": "ghcr.io/grycap/cowsay",
    "script": "#!/bin/sh\ncat $INPUT_FILE_PATH\n",
    "input": [{"storage_provider": "minio.default", "path": "cowsay-bucket/in"}],
    "output": [{"storage_provider": "minio.default", "path": "cowsay-bucket/out"}],
    "expose": {"api_port": [8080]},
    "environment": {"variables": {"GREETING": "moo"}},
}


def _client(fake: FakeOscar, **overrides: object) -> OscarClient:
    access = OscarAccess(url=fake.url, user=fake.user, password=fake.password)
    return OscarClient(access, **overrides)  # type: ignore[arg-type]


def _store(fake: FakeOscar) -> ObjectStore:
    return ObjectStore(MinioAccess(fake.s3_endpoint, fake.s3_access_key, fake.s3_secret_key))


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_service_lifecycle_and_the_answers_of_the_api(fake: FakeOscar) -> None:
    """create 201, update 204, delete 204 (pkg/handlers/create.go, update.go, delete.go at v4.1.2)."""
    with _client(fake) as client:
        assert client.health() == "Ok"
        assert client.info()["version"] == "v4.1.2"
        assert client.list_services() == []

        assert client.apply_service(SERVICE) == ApplyOutcome("created")
        assert client.apply_service(SERVICE) == ApplyOutcome("unchanged")  # same definition: no PUT at all
        changed = {**SERVICE, "memory": "512Mi"}
        assert client.apply_service(changed) == ApplyOutcome("updated", ("memory",))
        assert [request[:2] for request in fake.requests if request[0] in ("POST", "PUT")] == [
            ("POST", "/system/services"),
            ("PUT", "/system/services"),
        ]
        stored = client.get_service("cowsay")
        assert stored["memory"] == "512Mi" and len(stored["token"]) == 64 and stored["owner"] == "cluster_admin"
        assert [item["name"] for item in client.list_services()] == ["cowsay"]

        client.delete_service("cowsay")
        with pytest.raises(ServiceNotFound, match="no service 'cowsay' to delete"):
            client.delete_service("cowsay")
        assert client.find_service("cowsay") is None
    assert all(kind == "basic" for method, path, kind, _ in fake.requests if path.startswith("/system/"))


def test_a_name_created_twice_is_understood(fake: FakeOscar) -> None:
    """A second create of one name: 400, not 409 (shared reference note: pkg/handlers/create.go:305-312 at the
    tag; older copies answer 409 Conflict, which the client reads the same way)."""
    with _client(fake) as client:
        client.create_service(SERVICE)
        with pytest.raises(ServiceExists) as duplicate:
            client.create_service(SERVICE)
    assert duplicate.value.status_code == 400
    assert str(duplicate.value) == (
        f"POST {fake.url}/system/services: the server answered 400 Bad Request: A service with the provided name "
        "already exists; `oscar-deploy service apply` updates an existing service"
    )
    fake.fail("POST", "/system/services", 409, "A service with the provided name already exists")
    with _client(fake) as client, pytest.raises(ServiceExists) as older:
        client.create_service(SERVICE)
    assert older.value.status_code == 409


def test_delete_removes_the_services_input_bucket(fake: FakeOscar) -> None:
    """delete.go deleteBuckets: the service's MinIO input buckets go with it (shared reference note:
    delete.go:133-137 at the tag)."""
    with _client(fake) as client:
        client.create_service(SERVICE)
        assert _store(fake).bucket_exists("cowsay-bucket")
        client.delete_service("cowsay")
    assert not _store(fake).bucket_exists("cowsay-bucket")


def test_the_server_refuses_wrong_types_and_drops_unknown_keys(fake: FakeOscar) -> None:
    """Go's encoding/json fails a wrong type (400 from ShouldBindJSON in create.go) and drops unknown keys."""
    with _client(fake) as client:
        with pytest.raises(OscarApiError) as caught:
            client.create_service({**SERVICE, "memory": 512})
        assert caught.value.status_code == 400
        assert "The service specification is not valid: memory: 512 is not of type 'string', 'null'" in str(
            caught.value
        )
        client.create_service({**SERVICE, "expose": {"api_port": [8080], "port": 5000}, "replicas": []})
    assert sorted(fake.dropped) == ["cowsay: expose.port", "cowsay: replicas"]
    assert "replicas" not in fake.services["cowsay"]
    fake.dropped.clear()


def test_apply_compares_with_what_the_server_stores(fake: FakeOscar) -> None:
    """GET answers the service as Go marshals it: zero values, the server's labels and minio.default, secrets
    blanked (create.go checkValues; the secrets loop empties the values). None of that is a change."""
    service = {
        **SERVICE,
        "output": [{"storage_provider": "s3.results", "path": "results"}],
        "storage_providers": {"s3": {"results": {"access_key": "AKIA", "secret_key": "s3-secret", "region": "x"}}},
        "environment": {"variables": {"GREETING": "moo"}, "secrets": {"API_KEY": "first"}},
        "labels": {"team": "cows"},
    }
    with _client(fake) as client:
        assert client.apply_service(service) == ApplyOutcome("created")
        stored = client.get_service("cowsay")
        assert stored["environment"]["secrets"] == {"API_KEY": ""}
        assert stored["storage_providers"]["minio"]["default"]["access_key"] == "hidden"
        assert stored["labels"]["oscar_service"] == "cowsay" and stored["alpine"] is False
        assert stored["output"] == [{"storage_provider": "s3.results", "path": "cowsay/results"}]
        assert client.apply_service(service) == ApplyOutcome("unchanged")
        new_secret = {**service, "environment": {"variables": {"GREETING": "moo"}, "secrets": {"API_KEY": "second"}}}
        assert client.apply_service(new_secret) == ApplyOutcome("updated", ("environment",))
        assert client.apply_service(new_secret) == ApplyOutcome("unchanged")
        fewer = {key: value for key, value in new_secret.items() if key != "labels"}
        assert client.apply_service(fewer) == ApplyOutcome("updated", ("labels",))
    digest = fake.services["cowsay"]["annotations"]["oscar-deploy/secrets-hmac"]
    assert len(digest) == 64 and "second" not in json.dumps(fake.services["cowsay"])


def test_bad_credentials_say_so_without_showing_the_password(fake: FakeOscar) -> None:
    access = OscarAccess(url=fake.url, user="oscar", password="wrong-password-123")
    with OscarClient(access) as client, pytest.raises(OscarApiError) as caught:
        client.list_services()
    message = str(caught.value)
    assert caught.value.status_code == 401
    assert "401 Unauthorized: credentials rejected (user 'oscar')" in message
    assert "wrong-password-123" not in message


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_service_token_rejected_says_to_run_again_not_to_check_the_password(
    fake: FakeOscar, monkeypatch: pytest.MonkeyPatch, asynchronous: bool
) -> None:
    """The token is read from the server right before the call: a 401 means the service changed meanwhile."""
    access = OscarAccess(url=fake.url, user=fake.user, password=fake.password)
    with OscarClient(access) as client:
        client.apply_service(SERVICE)
        stale = "0" * 64  # the token the service had before it was made again
        monkeypatch.setattr(OscarClient, "_service_token", lambda self, name: stale)
        with pytest.raises(OscarApiError) as caught:
            client.submit_job("cowsay", b"hi") if asynchronous else client.run("cowsay", b"hi")
    path = "job" if asynchronous else "run"
    assert str(caught.value) == (
        f"POST {fake.url}/{path}/cowsay: the server answered 401 Unauthorized: it rejected the service's own token, "
        "read from it a moment before; the service was probably deleted or made again meanwhile, so run the "
        "command again"
    )
    assert stale not in str(caught.value)


def test_bearer_tokens_are_sent_instead_of_basic_auth(fake: FakeOscar) -> None:
    """main.go: /system uses basic auth, or a bearer token when OIDC is enabled."""
    fake.oidc_tokens.add("oidc-access-token")
    with OscarClient(OscarAccess(url=fake.url, token="oidc-access-token")) as client:
        assert client.list_services() == []
    with (
        OscarClient(OscarAccess(url=fake.url, token="expired")) as client,
        pytest.raises(OscarApiError, match="bearer"),
    ):
        client.info()
    assert [kind for _, path, kind, _ in fake.requests] == ["bearer", "bearer"]


def test_authentication_per_route(fake: FakeOscar) -> None:
    """main.go: /health has no auth; /system/* sits behind auth.GetAuthMiddleware (basic auth, gin's 401 with
    WWW-Authenticate); /run and /job check `Authorization: Bearer <token>` themselves (run.go)."""
    with _client(fake) as client:
        client.create_service(SERVICE)
        token = client.get_service("cowsay")["token"]
    basic = httpx.BasicAuth(fake.user, fake.password)
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{fake.url}/health").status_code == 200
    denied = httpx.get(f"{fake.url}/system/info")
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"].startswith("Basic")
    assert httpx.get(f"{fake.url}/system/info", auth=basic).status_code == 200
    assert httpx.get(f"{fake.url}/system/info", headers=bearer).status_code == 401  # OIDC is off
    for route in ("/run/cowsay", "/job/cowsay"):
        assert httpx.post(f"{fake.url}{route}", content=b"eA==", auth=basic).status_code == 401
    assert httpx.post(f"{fake.url}/run/cowsay", content=b"eA==", headers=bearer).status_code == 200
    assert httpx.post(f"{fake.url}/job/cowsay", content=b"eA==", headers=bearer).status_code == 201


def test_sync_and_async_invocations_and_job_logs(fake: FakeOscar) -> None:
    """/run and /job take only the service's bearer token (pkg/handlers/run.go: `Bearer ` split, 64-char token)."""
    fake.processor = lambda data: b"the cow says: " + data
    binary = bytes(range(256))
    with _client(fake) as client:
        client.create_service(SERVICE)
        assert client.run("cowsay", b"hello") == b"the cow says: hello"
        assert client.run("cowsay", binary) == b"the cow says: " + binary
        assert client.run("cowsay", b"hi", decode=False) == b"dGhlIGNvdyBzYXlzOiBoaQ=="
        assert client.list_jobs("cowsay") == []  # synchronous calls run in Knative, not as jobs

        client.submit_job("cowsay", b"async input")
        (job,) = client.list_jobs("cowsay")
        assert job.name.startswith("cowsay-") and job.status == "Succeeded"
        assert "the cow says: async input" in client.job_log("cowsay", job.name)
        with pytest.raises(ServiceNotFound, match="no job 'cowsay-nope' of service 'cowsay'"):
            client.job_log("cowsay", "cowsay-nope")
        with pytest.raises(ServiceNotFound, match="no service 'ghost'"):
            client.run("ghost", b"x")
    # The invocations carried the service's own token, never the admin credentials.
    invocations = [kind for method, path, kind, _ in fake.requests if path.startswith(("/run/", "/job/"))]
    assert invocations == ["bearer"] * 4


def test_every_page_of_jobs_is_read(fake: FakeOscar) -> None:
    """logs.go MakeJobsInfoHandler lists pods with Limit=JobListingLimit (70) and Continue=?page=, in name order,
    and answers next_page (the continue token) and remaining_jobs; oscar-cli follows next_page."""
    with _client(fake) as client:
        client.create_service(SERVICE)
        for _ in range(141):
            fake.new_job("cowsay", "log")
        newest = fake.new_job("cowsay", "the newest")
        jobs = client.list_jobs("cowsay")
    assert len(jobs) == 142 and jobs[-1] == JobInfo(
        newest.name, "Succeeded", newest.created, newest.created, newest.created
    )
    pages = [path for method, path, _, _ in fake.requests if path == "/system/logs/cowsay"]
    assert len(pages) == 3  # 70 + 70 + 2


def test_a_page_token_handed_out_twice_stops_the_listing(fake: FakeOscar, monkeypatch: pytest.MonkeyPatch) -> None:
    with _client(fake) as client:
        client.create_service(SERVICE)
        fake.new_job("cowsay", "log")
        monkeypatch.setattr(fake, "job_page", lambda service, token: {"jobs": {}, "next_page": "same"})
        with pytest.raises(OperationError, match="handed out the same page token twice; 0 jobs read so far"):
            client.list_jobs("cowsay")


def test_run_without_a_serverless_backend_says_so(fake: FakeOscar) -> None:
    """main.go registers POST /run only when SERVERLESS_BACKEND is set; gin answers "404 page not found"."""
    fake.serverless_backend = False
    with _client(fake) as client:
        client.create_service(SERVICE)
        with pytest.raises(NoServerlessBackend) as caught:
            client.run("cowsay", b"x")
        client.submit_job("cowsay", b"x")  # /job is there without a backend
    assert str(caught.value) == (
        f"POST {fake.url}/run/cowsay: the server has no /run route: OSCAR runs without a serverless backend "
        "(main.go registers /run only with SERVERLESS_BACKEND set, knative here); invoke it with --async "
        "(POST /job), or set SERVERLESS_BACKEND=knative on the manager"
    )


def test_a_502_while_the_revision_starts_is_waited_out(fake: FakeOscar) -> None:
    """run.go proxies /run with httputil.ReverseProxy, whose error answer is 502 while the revision is not ready."""
    time_ = FakeTime()
    fake.not_ready_runs = 3
    with _client(fake, sleep=time_.sleep, clock=time_.clock) as client:
        client.create_service(SERVICE)
        assert client.run("cowsay", b"hello") == b"hello"
    assert time_.pauses == [1.0, 2.0, 4.0]


def test_a_revision_that_never_gets_ready_fails_after_the_bounded_wait(fake: FakeOscar) -> None:
    time_ = FakeTime()
    fake.not_ready_runs = 10_000
    with _client(fake, sleep=time_.sleep, clock=time_.clock) as client:
        client.create_service(SERVICE)
        with pytest.raises(OperationError) as caught:
            client.run("cowsay", b"hello", ready_wait=30)
    assert time_.pauses == [1.0, 2.0, 4.0, 8.0, 10.0, 5.0]  # doubling, at most 10 s, never past the wait
    assert str(caught.value) == (
        f"POST {fake.url}/run/cowsay: the service is not ready yet: the gateway answered 502 Bad Gateway for 30 s "
        "while its Knative revision starts; try again in a minute, or look at `kubectl -n oscar-svc get ksvc cowsay`"
    )


def test_run_output_is_decoded_only_when_it_is_base64() -> None:
    assert decode_run_output(b"aGVsbG8=\n") == b"hello"
    assert decode_run_output(b" _____\n< moo >\n -----\n") == b" _____\n< moo >\n -----\n"
    assert decode_run_output(b"") == b""


def test_connection_failures_are_retried_and_then_explained() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    pauses: list[float] = []
    access = OscarAccess(url=f"http://127.0.0.1:{port}", user="oscar", password="x")
    client = OscarClient(access, retries=3, retry_delay=0.5, sleep=pauses.append)
    with client, pytest.raises(OperationError) as caught:
        client.health()
    assert pauses == [0.5, 1.0, 1.5]
    assert f"GET http://127.0.0.1:{port}/health: cannot connect after 4 attempts" in str(caught.value)


def test_server_errors_are_not_retried_and_show_the_answer(fake: FakeOscar) -> None:
    fake.fail("GET", "/system/info", 500, "metrics-server unavailable")
    with _client(fake, sleep=lambda _: pytest.fail("must not retry")) as client, pytest.raises(OscarApiError) as caught:
        client.info()
    assert str(caught.value).endswith(
        "/system/info: the server answered 500 Internal Server Error: metrics-server unavailable"
    )
    assert [path for _, path, _, _ in fake.requests] == ["/system/info"]


def test_a_server_that_does_not_answer_times_out_once() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    access = OscarAccess(url=f"http://127.0.0.1:{listener.getsockname()[1]}", user="u", password="p")
    try:
        with OscarClient(access, timeout=0.3) as client, pytest.raises(OperationError, match="no answer in time"):
            client.info()
    finally:
        for connection in accepted:
            connection.close()
        listener.close()
    assert len(accepted) == 1


# --- TLS with the cluster's own CA ---------------------------------------------------------------------------


def _self_signed_ca_and_server(folder: Path) -> tuple[Path, ssl.SSLContext]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oscar-deploy test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.crt").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.crt", folder / "server.key")
    return ca_file, context


def test_tls_is_verified_against_the_clusters_ca_file(tmp_path: Path, s3_server: S3Server) -> None:
    ca_file, context = _self_signed_ca_and_server(tmp_path)
    fake = FakeOscar(s3_endpoint=s3_server.url, ssl_context=context).start()
    try:
        assert fake.url.startswith("https://127.0.0.1:")
        trusted = OscarAccess(url=fake.url, user=fake.user, password=fake.password, ca_file=ca_file)
        with OscarClient(trusted) as client:
            assert client.info()["version"] == "v4.1.2"
        untrusted = OscarAccess(url=fake.url, user=fake.user, password=fake.password)
        client = OscarClient(untrusted, sleep=lambda _: pytest.fail("TLS failures are not retried"))
        with client, pytest.raises(OperationError, match=r"TLS certificate not trusted .*pass its CA with --ca-file"):
            client.info()
    finally:
        fake.stop()


# --- files in MinIO ------------------------------------------------------------------------------------------


def test_files_go_to_and_come_from_buckets(fake: FakeOscar, tmp_path: Path) -> None:
    with _client(fake) as client:
        client.create_service(SERVICE)  # creates cowsay-bucket with its in/ and out/ folders, as OSCAR does
    store = _store(fake)
    assert "cowsay-bucket" in store.list_buckets()
    local = tmp_path / "photo.jpg"
    local.write_bytes(b"\xff\xd8 not really a jpeg")
    store.put_file(local, "cowsay-bucket", upload_key("in/", local, several=False))
    keys = [item.key for item in store.list_objects("cowsay-bucket", "in/")]
    assert keys == ["in/", "in/photo.jpg"]
    found = store.wait_for_object("cowsay-bucket", "out/", timeout=5, interval=0.05)
    assert found.key == "out/photo.jpg.out"  # the fake's job copied the input, as the webhook flow would
    assert store.get_bytes("cowsay-bucket", found.key) == local.read_bytes()
    local.unlink()
    os.mkfifo(local)  # swapped for a FIFO after the command checked it: opening it neither blocks nor uploads
    with pytest.raises(UserInputError) as swapped:
        store.put_file(local, "cowsay-bucket", "in/fifo.jpg")
    assert str(swapped.value) == (
        f"{local}: is a FIFO (named pipe), not a regular file; pass a regular file as the file to upload"
    )

    with pytest.raises(OperationError, match=r"MinIO answered NoSuchKey.*no such file"):
        store.get_bytes("cowsay-bucket", "out/missing")
    with pytest.raises(OperationError, match="MinIO answered NoSuchBucket"):
        store.list_objects("no-such-bucket")
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    with pytest.raises(OperationError, match="no file appeared under cowsay-bucket/nothing/ within 2 s"):
        store.wait_for_object("cowsay-bucket", "nothing/", timeout=2, interval=1.0, sleep=sleep, clock=lambda: now[0])
    assert pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 0.5])  # backs off to the interval, stops at the deadline
    store.remove_bucket("cowsay-bucket")
    assert "cowsay-bucket" not in store.list_buckets()


def test_locations_and_upload_keys() -> None:
    assert split_location("photos/in/a.jpg") == ("photos", "in/a.jpg")
    assert split_location("s3://photos") == ("photos", "")
    with pytest.raises(UserInputError):
        split_location("/")
    assert upload_key("in/", Path("x/a.jpg"), several=False) == "in/a.jpg"
    assert upload_key("in/b.jpg", Path("a.jpg"), several=False) == "in/b.jpg"
    assert upload_key("in", Path("a.jpg"), several=True) == "in/a.jpg"
    assert upload_key("", Path("a.jpg"), several=False) == "a.jpg"


def test_minio_credentials_from_oscars_config(fake: FakeOscar) -> None:
    with _client(fake) as client:
        config = client.config()
    access = minio_access_from_config(config, fake.s3_endpoint, None)
    assert (access.url, access.access_key) == (fake.s3_endpoint, fake.s3_access_key)
    assert minio_access_from_config(config, None, None).url == "http://minio.minio:9000"
    with pytest.raises(OperationError, match="did not hand out MinIO credentials"):
        minio_access_from_config({"config": {}}, None, None)


def test_the_secrets_digest_depends_on_the_values_and_the_credential() -> None:
    """Secret values come back blank (create.go), so apply compares an HMAC of them kept in an annotation."""
    body = {"name": "x", "environment": {"secrets": {"API_KEY": "value-1"}}, "annotations": {"team": "a"}}
    first = with_secrets_digest(body, "admin-password")["annotations"]
    assert first["team"] == "a" and len(first[SECRETS_DIGEST_ANNOTATION]) == 64
    assert with_secrets_digest(body, "admin-password")["annotations"] == first
    assert with_secrets_digest(body, "other-password")["annotations"] != first
    changed = {**body, "environment": {"secrets": {"API_KEY": "value-2"}}}
    assert with_secrets_digest(changed, "admin-password")["annotations"] != first
    assert "value-1" not in json.dumps(first)
    stale = {"name": "x", "annotations": {SECRETS_DIGEST_ANNOTATION: "old"}}
    assert "annotations" not in with_secrets_digest(stale, "admin-password")  # no secrets, no digest
