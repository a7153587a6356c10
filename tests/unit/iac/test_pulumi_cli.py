"""Finding and installing the Pulumi CLI: a release folder served on 127.0.0.1, the data folder, PATH, doctor."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar_deploy.iac.pulumi_cli import (
    DOWNLOAD_URL_ENV,
    PulumiLocation,
    PulumiRelease,
    cli_version,
    data_root,
    ensure_pulumi,
    find_pulumi,
    install_dir,
    install_pulumi,
    manual_install_command,
    pulumi_doctor_check,
    pulumi_release,
)
from oscar_deploy.support.download import Downloader
from oscar_deploy.support.errors import OperationError, UserInputError
from tests.unit.iac.pulumi_release import ARCHIVE, CHECKSUMS, VERSION, archive, publish, wrapper
from tests.unit.release_server import ReleaseServer, Route


@pytest.fixture
def server() -> Iterator[ReleaseServer]:
    release = ReleaseServer()
    yield release
    release.close()


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's data folder (platformdirs follows XDG_DATA_HOME) and a PATH without any pulumi."""
    home = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(DOWNLOAD_URL_ENV, raising=False)
    return home


def release_for(server: ReleaseServer | str) -> PulumiRelease:
    base = server if isinstance(server, str) else server.base
    return pulumi_release(download_url=f"{base}/download", system="Linux", machine="x86_64")


def install(server: ReleaseServer | str) -> Path:
    downloader = Downloader(attempts=2, backoff=0.0, timeout=5.0)
    try:
        return install_pulumi(release_for(server), downloader)
    finally:
        downloader.close()


def leftovers(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")) if root.exists() else []


def test_release_names_and_urls_follow_upstream(data_home: Path) -> None:
    release = pulumi_release(system="Linux", machine="x86_64")
    assert release.version == VERSION
    assert release.url(release.archive) == (
        f"https://github.com/pulumi/pulumi/releases/download/v{VERSION}/pulumi-v{VERSION}-linux-x64.tar.gz"
    )
    assert release.url(release.checksums) == (
        f"https://github.com/pulumi/pulumi/releases/download/v{VERSION}/pulumi-{VERSION}-checksums.txt"
    )
    assert pulumi_release(system="Linux", machine="aarch64").archive == f"pulumi-v{VERSION}-linux-arm64.tar.gz"
    assert pulumi_release(system="Darwin", machine="arm64").archive == f"pulumi-v{VERSION}-darwin-arm64.tar.gz"
    assert pulumi_release(version="v3.300.1", system="Linux", machine="x86_64").version == "3.300.1"
    with pytest.raises(OperationError, match=r"^pulumi CLI: no upstream build for Linux/riscv64; install pulumi"):
        pulumi_release(system="Linux", machine="riscv64")
    assert install_dir(VERSION) == data_home / "oscar-deploy" / "pulumi" / VERSION


def test_good_release_is_verified_and_unpacked_into_the_data_folder(server: ReleaseServer, data_home: Path) -> None:
    publish(server)
    binary = install(server)
    target = data_home / "oscar-deploy" / "pulumi" / VERSION
    assert binary == target / "bin" / "pulumi"
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    assert binary.read_bytes() == wrapper()
    assert stat.S_IMODE((target / "bin" / "README.md").stat().st_mode) == 0o644
    assert cli_version(binary) == (3, 272, 0)
    assert leftovers(data_root()) == [
        VERSION,
        f"{VERSION}/bin",
        *(f"{VERSION}/bin/{name}" for name in ("README.md", "pulumi", "pulumi-language-python")),
    ]
    assert server.requests == [f"/download/v{VERSION}/{CHECKSUMS}", f"/download/v{VERSION}/{ARCHIVE}"]
    assert find_pulumi(VERSION) == PulumiLocation(binary, "installed")


def test_bad_checksum_names_the_file_and_installs_nothing(server: ReleaseServer, data_home: Path) -> None:
    publish(server, body=b"tampered archive", listed=archive())
    with pytest.raises(OperationError) as caught:
        install(server)
    assert str(caught.value).startswith(f"{ARCHIVE}: sha256 mismatch for {server.base}/download/v{VERSION}/{ARCHIVE}")
    assert "the download was deleted" in str(caught.value)
    assert leftovers(data_root()) == []
    assert find_pulumi(VERSION) is None


def test_truncated_download_is_retried_then_deleted_and_named(server: ReleaseServer, data_home: Path) -> None:
    body = publish(server)
    server.routes[f"/download/v{VERSION}/{ARCHIVE}"] = Route(body, behaviour="truncate")
    with pytest.raises(OperationError) as caught:
        install(server)
    message = str(caught.value)
    assert message.startswith(f"{ARCHIVE}: download from {server.base}/download/v{VERSION}/{ARCHIVE} failed 2 times")
    assert message.endswith("the partial file was deleted; check the network or the download URL and run again")
    assert "offline" not in message, "the server answered: not an offline error"
    assert server.requests.count(f"/download/v{VERSION}/{ARCHIVE}") == 2
    assert leftovers(data_root()) == []


def test_missing_release_is_a_404_line(server: ReleaseServer, data_home: Path) -> None:
    with pytest.raises(OperationError) as caught:
        install(server)
    assert str(caught.value) == (
        f"{CHECKSUMS}: {server.base}/download/v{VERSION}/{CHECKSUMS} answered HTTP 404; "
        "check the version and the download URL"
    )
    assert leftovers(data_root()) == []


def test_a_download_url_with_credentials_is_refused_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DOWNLOAD_URL_ENV, "http://bob:PulumiMirrorPw@127.0.0.1:9/pulumi")
    with pytest.raises(UserInputError) as caught:
        pulumi_release(system="Linux", machine="x86_64")
    assert str(caught.value) == (
        f"{DOWNLOAD_URL_ENV} 'http://****@127.0.0.1:9/pulumi': carries credentials, which do not belong in a URL; "
        "put them in ~/.netrc for the mirror's host instead"
    )
    with pytest.raises(UserInputError, match=r"^download URL 'http://\*\*\*\*@127.0.0.1:9': carries credentials"):
        pulumi_release(download_url="http://bob:pw@127.0.0.1:9", system="Linux", machine="x86_64")
    monkeypatch.setenv(DOWNLOAD_URL_ENV, "http://127.0.0.1:9/pulumi/")
    assert pulumi_release(system="Linux", machine="x86_64").download_url == "http://127.0.0.1:9/pulumi"


def test_download_errors_never_print_a_urls_credentials(server: ReleaseServer, tmp_path: Path) -> None:
    """Whatever URL reaches the downloader (a catalogue entry, a future option), its messages mask credentials."""
    downloader = Downloader(attempts=1, backoff=0.0, timeout=5.0)
    try:
        with pytest.raises(OperationError) as caught:
            downloader.fetch(server.base.replace("://", "://alice:S3cretPass@") + "/missing", tmp_path / "x")
    finally:
        downloader.close()
    assert str(caught.value) == (
        f"x: {server.base.replace('://', '://****@')}/missing answered HTTP 404; check the version and the download URL"
    )


def test_checksums_without_our_archive_are_refused(server: ReleaseServer, data_home: Path) -> None:
    publish(server)
    server.routes[f"/download/v{VERSION}/{CHECKSUMS}"] = Route(b"")
    with pytest.raises(OperationError, match=rf"^{CHECKSUMS}: lists no {ARCHIVE}; check the pulumi version"):
        install(server)


def test_offline_is_one_line_with_the_command_that_installs_by_hand(data_home: Path) -> None:
    closed = "http://127.0.0.1:9"
    with pytest.raises(OperationError) as caught:
        install(closed)
    message = str(caught.value)
    target = data_home / "oscar-deploy" / "pulumi" / VERSION
    assert message == (
        f"pulumi CLI v{VERSION}: not on PATH and not in {target}, and 127.0.0.1:9 cannot be reached (offline?); "
        f"install it by hand: mkdir -p {target}/bin && curl -fsSL {closed}/download/v{VERSION}/{ARCHIVE} | "
        f"tar -xz -C {target}/bin --strip-components=1"
    )
    assert "\n" not in message
    assert manual_install_command(release_for(closed)) in message
    assert leftovers(data_root()) == []


@pytest.mark.parametrize(
    ("entries", "links", "refused"),
    [
        ([("pulumi/../../escape", b"x", 0o644)], None, "pulumi/../../escape"),
        ([("/etc/cron.d/pulumi", b"x", 0o644)], None, "/etc/cron.d/pulumi"),
        ([("other/pulumi", b"x", 0o755)], None, "other/pulumi"),
        ([("pulumi/pulumi", b"x", 0o755)], {"pulumi/pulumi-watch": "/bin/sh"}, "pulumi/pulumi-watch"),
    ],
)
def test_an_archive_with_unexpected_entries_is_refused(
    server: ReleaseServer, data_home: Path, entries: list, links: dict | None, refused: str
) -> None:
    publish(server, body=archive(entries, links))
    with pytest.raises(OperationError, match=rf"^{ARCHIVE}: unexpected (path|entry) {refused}; refusing the archive"):
        install(server)
    assert leftovers(data_root()) == []


def test_sibling_links_and_the_older_bin_layout_are_unpacked(server: ReleaseServer, data_home: Path) -> None:
    entries = [("pulumi/bin/pulumi", wrapper(), 0o755)]
    publish(server, body=archive(entries, {"pulumi/bin/pulumi-alias": "pulumi"}))
    binary = install(server)
    assert (binary.parent / "pulumi-alias").readlink() == Path("pulumi")
    assert cli_version(binary) == (3, 272, 0)


def put_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str) -> Path:
    folder = tmp_path / "path-bin"
    folder.mkdir(exist_ok=True)
    binary = folder / "pulumi"
    binary.write_bytes(wrapper())
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("PULUMI_STAND_IN_VERSION", version)
    return binary


def test_path_comes_first_then_the_data_folder(
    server: ReleaseServer, data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_pulumi(VERSION) is None
    publish(server)
    installed = ensure_pulumi(release=release_for(server))
    assert installed == install_dir(VERSION) / "bin" / "pulumi"
    server.requests.clear()
    assert ensure_pulumi(release=release_for(server)) == installed
    assert server.requests == [], "an installed CLI is not downloaded again"
    on_path = put_on_path(tmp_path, monkeypatch, "v3.280.1")
    assert find_pulumi(VERSION) == PulumiLocation(on_path, "path")
    assert ensure_pulumi(release=release_for(server)) == on_path


def test_a_too_old_cli_on_path_is_refused_with_the_way_out(
    data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = put_on_path(tmp_path, monkeypatch, "v3.100.0")
    with pytest.raises(OperationError) as caught:
        ensure_pulumi(release=release_for("http://127.0.0.1:9"))
    assert str(caught.value) == (
        f"{on_path}: pulumi v3.100.0 is older than v3.181.0 that oscar-deploy needs; upgrade it, or take it off "
        f"PATH and oscar-deploy installs v{VERSION} itself"
    )


def test_doctor_says_where_the_cli_is_or_that_it_comes_on_first_use(
    server: ReleaseServer, data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DOWNLOAD_URL_ENV, f"{server.base}/download")
    target = install_dir(VERSION)
    check = pulumi_doctor_check()
    assert (check.name, check.status, check.needed_for) == ("pulumi cli", "warn", ())
    assert check.detail == (
        f"not on PATH; v{VERSION} will be installed into {target} on first use "
        "(drives the infrastructure and platform stacks)"
    )
    assert check.fix == f"offline, install it by hand: {manual_install_command(pulumi_release())}"

    publish(server)
    ensure_pulumi()
    check = pulumi_doctor_check()
    assert (check.status, check.detail) == (
        "ok",
        f"{target}/bin/pulumi (v{VERSION}, installed by oscar-deploy; drives the infrastructure and platform stacks)",
    )

    on_path = put_on_path(tmp_path, monkeypatch, "v3.280.1")
    check = pulumi_doctor_check()
    assert (check.status, check.detail) == (
        "ok",
        f"{on_path} on PATH (v3.280.1; drives the infrastructure and platform stacks)",
    )
    monkeypatch.setenv("PULUMI_STAND_IN_VERSION", "v3.180.9")
    check = pulumi_doctor_check()
    assert check.status == "missing"
    assert check.detail.startswith(f"{on_path} on PATH: v3.180.9, older than v3.181.0")


def test_doctor_prints_the_pulumi_line_and_the_hand_install_fix(
    cli, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import os

    monkeypatch.setenv("PATH", os.pathsep.join([os.environ["PATH"], "/usr/bin", "/bin"]))  # ssh, podman; no pulumi
    result = cli("doctor", "--json")
    assert result.exit_code == 0, result.output
    checks = {check["check"]: check for check in json.loads(result.stdout)["checks"]}
    target = install_dir(VERSION)
    assert checks["pulumi cli"]["status"] == "warn"
    assert checks["pulumi cli"]["detail"].startswith(f"not on PATH; v{VERSION} will be installed into {target}")
    text = cli("doctor")
    assert text.exit_code == 0
    assert f"pulumi cli: warn; fix: offline, install it by hand: mkdir -p {target}/bin && curl -fsSL " in text.stdout


def test_an_install_finished_meanwhile_by_another_run_is_kept(server: ReleaseServer, data_home: Path) -> None:
    publish(server)
    mine = install_dir(VERSION) / "bin" / "pulumi"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"#!/bin/sh\necho v3.272.0\n")
    assert install(server) == mine
    assert mine.read_bytes() == b"#!/bin/sh\necho v3.272.0\n", "the other run's binary is not replaced"
    assert leftovers(data_root()) == [VERSION, f"{VERSION}/bin", f"{VERSION}/bin/pulumi"]


def test_an_install_that_lost_its_binary_is_replaced(server: ReleaseServer, data_home: Path) -> None:
    publish(server)
    broken = install_dir(VERSION) / "bin"
    broken.mkdir(parents=True)
    (broken / "pulumi-language-python").write_bytes(b"left over")
    binary = install(server)
    assert binary.read_bytes() == wrapper()
    assert (broken / "pulumi-language-python").read_bytes() != b"left over"
