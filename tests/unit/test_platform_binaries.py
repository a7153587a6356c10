"""oscar-pvc's binaries for mixed amd64/arm64 clusters: the Job's script run for real with the system's sh,
wget, unzip and sha256sum against release files served on 127.0.0.1, then the dispatchers run as a service
pod runs them (the kernel executing a `#!/bin/sh` command) on both CPUs."""

from __future__ import annotations

import hashlib
import http.server
import io
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from oscar_deploy.platform.binaries import populate_script, release_name
from oscar_deploy.spec.catalogue import Catalogue, load_catalogue


def _program(label: str) -> bytes:
    """Stands in for an upstream binary: prints which build ran, its arguments and the arch variable."""
    return f'#!/bin/sh\necho "{label} $* arch=${{OSCAR_BIN_ARCH:-unset}}"\n'.encode()


def _supervisor_zip(label: str) -> bytes:
    """Stands in for faas-supervisor's release zips: a PyInstaller one-folder build under `supervisor/`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("supervisor/supervisor")
        info.external_attr = 0o100755 << 16
        archive.writestr(info, _program(label))
        archive.writestr("supervisor/_internal/base_library.zip", b"library")
    return buffer.getvalue()


RELEASE_FILES = {
    "/fw/0.2.1/fwatchdog-amd64": _program("fwatchdog-amd64"),
    "/fw/0.2.1/fwatchdog-arm64": _program("fwatchdog-arm64"),
    "/sv/1.6.2/supervisor.zip": _supervisor_zip("supervisor-amd64"),
    "/sv/1.6.2/supervisor-arm64.zip": _supervisor_zip("supervisor-arm64"),
    "/sv/1.6.2/supervisor-alpine.zip": _supervisor_zip("supervisor-alpine-amd64"),
    "/sv/1.6.2/supervisor-alpine-arm64.zip": _supervisor_zip("supervisor-alpine-arm64"),
}


class _Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = RELEASE_FILES.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def release_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def catalogue_at(base: str, pins: dict[str, str | None]) -> Catalogue:
    """The real catalogue with its binaries' download URLs moved to `base`, and the given sha256 pins."""
    catalogue = load_catalogue()
    components = dict(catalogue.components)
    for key, folder in (("fwatchdog", "fw"), ("faas_supervisor", "sv")):
        component = components[key]
        files = tuple(replace(f, sha256=pins.get(f.name)) for f in component.files)
        components[key] = replace(component, download_url=f"{base}/{folder}", files=files)
    return replace(catalogue, components=components)


def sha(path: str) -> str:
    return hashlib.sha256(RELEASE_FILES[path]).hexdigest()


ALL_PINNED = {path.rsplit("/", 1)[1]: sha(path) for path in RELEASE_FILES}


def populate(catalogue: Catalogue, tmp_path: Path, dest: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "populate.sh"
    script.write_text(populate_script(catalogue))
    return subprocess.run(["/bin/sh", str(script), str(dest)], capture_output=True, text=True, timeout=120)


def fake_uname(tmp_path: Path, machine: str) -> dict[str, str]:
    """A `uname` on PATH standing for coreutils/busybox `uname -m` on a node of that CPU."""
    folder = tmp_path / f"uname-{machine}"
    folder.mkdir(exist_ok=True)
    (folder / "uname").write_text(f"#!/bin/sh\necho {machine}\n")
    (folder / "uname").chmod(0o755)
    return {"PATH": f"{folder}:/usr/bin:/bin"}


def run(path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(path), *args], capture_output=True, text=True, env=env, timeout=30)


def test_populated_volume_runs_each_cpus_build(release_server: str, tmp_path: Path) -> None:
    catalogue = catalogue_at(release_server, ALL_PINNED)
    dest = tmp_path / "oscar-bin"
    dest.mkdir()
    result = populate(catalogue, tmp_path, dest)
    assert result.returncode == 0, result.stderr
    assert "UNPINNED" not in result.stdout
    release = release_name(catalogue)
    assert sorted(p.name for p in dest.iterdir()) == ["alpine", "fwatchdog", release, "supervisor"]
    assert (dest / release / "arm64" / "alpine" / "supervisor" / "_internal" / "base_library.zip").is_file()

    for machine, arch in (("x86_64", "amd64"), ("aarch64", "arm64")):
        env = fake_uname(tmp_path, machine)
        # The dispatcher exports the arch it found, so the supervisors fwatchdog starts need not look again.
        assert run(dest / "fwatchdog", env, "-x").stdout == f"fwatchdog-{arch} -x arch={arch}\n"
        # fwatchdog passes its environment on to fprocess; the supervisor dispatcher uses the arch it set.
        assert run(dest / "supervisor", {**env, "OSCAR_BIN_ARCH": arch}).stdout == f"supervisor-{arch}  arch={arch}\n"
        assert run(dest / "supervisor", env, "a").stdout == f"supervisor-{arch} a arch=unset\n"
        assert run(dest / "alpine" / "supervisor", env).stdout == f"supervisor-alpine-{arch}  arch=unset\n"

    unknown = run(dest / "fwatchdog", fake_uname(tmp_path, "riscv64"))
    assert unknown.returncode == 126
    assert unknown.stderr == "oscar-deploy: no OSCAR binaries for CPU riscv64 (only amd64 and arm64)\n"


def test_second_run_keeps_the_volume_and_a_new_pin_replaces_the_release(release_server: str, tmp_path: Path) -> None:
    dest = tmp_path / "oscar-bin"
    dest.mkdir()
    first = catalogue_at(release_server, ALL_PINNED)
    assert populate(first, tmp_path, dest).returncode == 0
    again = populate(first, tmp_path, dest)
    assert again.returncode == 0 and again.stdout == f"oscar-pvc already holds release {release_name(first)}\n"

    unpinned = catalogue_at(release_server, {})
    result = populate(unpinned, tmp_path, dest)
    assert result.returncode == 0, result.stderr
    url = f"{release_server}/fw/0.2.1/fwatchdog-arm64"
    assert f"UNPINNED {url} sha256={sha('/fw/0.2.1/fwatchdog-arm64')}\n" in result.stdout
    assert sorted(p.name for p in dest.iterdir() if p.name.startswith("r-")) == [release_name(unpinned)]
    env = fake_uname(tmp_path, "aarch64")
    assert run(dest / "fwatchdog", env).stdout == "fwatchdog-arm64  arch=arm64\n"


def test_checksum_mismatch_fails_and_leaves_the_volume_as_it_was(release_server: str, tmp_path: Path) -> None:
    dest = tmp_path / "oscar-bin"
    dest.mkdir()
    good = catalogue_at(release_server, ALL_PINNED)
    assert populate(good, tmp_path, dest).returncode == 0
    before = (dest / "fwatchdog").read_text()
    wrong = "0" * 64
    bad = catalogue_at(release_server, {**ALL_PINNED, "supervisor-arm64.zip": wrong})
    result = populate(bad, tmp_path, dest)
    assert result.returncode == 1
    url = f"{release_server}/sv/1.6.2/supervisor-arm64.zip"
    actual = sha("/sv/1.6.2/supervisor-arm64.zip")
    assert result.stderr == f"checksum mismatch: {url} has sha256 {actual}, the catalogue pins {wrong}\n"
    assert (dest / "fwatchdog").read_text() == before
    assert not (dest / release_name(bad)).exists()
    assert sorted(p.name for p in dest.iterdir()) == sorted(["alpine", "fwatchdog", "supervisor", release_name(good)])


def test_missing_file_fails_with_its_url(release_server: str, tmp_path: Path) -> None:
    catalogue = catalogue_at(release_server, ALL_PINNED)
    components = dict(catalogue.components)
    components["fwatchdog"] = replace(components["fwatchdog"], version="9.9.9")
    result = populate(replace(catalogue, components=components), tmp_path, tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"download failed: {release_server}/fw/9.9.9/fwatchdog-amd64\n"
