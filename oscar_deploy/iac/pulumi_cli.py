"""The Pulumi CLI the Automation API drives: found on PATH or in oscar-deploy's data folder, else installed there.

The Automation API runs the `pulumi` binary for every operation, and PyPI's `pulumi` package does not carry it.
`ensure_pulumi` looks on PATH first, then in `<user data dir>/oscar-deploy/pulumi/<version>/bin/`, and when
neither has it installs the catalogue's pinned version there: upstream's release archive
(`pulumi-v<version>-<os>-<arch>.tar.gz`, see pulumi/pulumi's `.github/workflows/sign.yml` and `install.sh`) is
downloaded with progress and checked against the release's `pulumi-<version>-checksums.txt` before anything is
unpacked; a partial or mismatching download is deleted and named in the error. Offline, one line says so and
gives the command that installs it by hand.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from oscar_deploy.support.checks import Check
from oscar_deploy.support.download import Downloader, DownloadReporter, DownloadUnreachable, parse_checksums
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.urls import NETRC_HINT, http_url

# A mirror of the release files (and the tests' release folder on 127.0.0.1) instead of the catalogue's URL.
DOWNLOAD_URL_ENV = "OSCAR_DEPLOY_PULUMI_DOWNLOAD_URL"
# The oldest CLI oscar-deploy drives: 3.181 added `--client` to refresh and destroy, which inline programs need
# (pulumi.automation._stack.Stack._check_inline_support).
MINIMUM_VERSION = (3, 181, 0)
OS_NAMES = {"Linux": "linux", "Darwin": "darwin"}
ARCH_NAMES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
VERSION_TIMEOUT = 30


@dataclass(frozen=True)
class PulumiRelease:
    """One release's files for this machine, as upstream names them in its GitHub release."""

    version: str  # without the leading v: 3.272.0
    download_url: str  # <download_url>/v<version>/<file>
    os: str
    arch: str

    @property
    def archive(self) -> str:
        return f"pulumi-v{self.version}-{self.os}-{self.arch}.tar.gz"

    @property
    def checksums(self) -> str:
        return f"pulumi-{self.version}-checksums.txt"

    def url(self, name: str) -> str:
        return f"{self.download_url.rstrip('/')}/v{self.version}/{name}"


def pulumi_release(
    version: str | None = None,
    download_url: str | None = None,
    system: str | None = None,
    machine: str | None = None,
) -> PulumiRelease:
    """The pinned release (or `version`) for this machine, from the argument's URL, the environment's or the
    catalogue's."""
    from oscar_deploy.spec.catalogue import load_catalogue

    entry = load_catalogue()["pulumi"]
    if download_url or os.environ.get(DOWNLOAD_URL_ENV):
        # Checked like every URL a user gives: it is printed by failed downloads and the manual install line.
        base = http_url(
            download_url or os.environ[DOWNLOAD_URL_ENV],
            "download URL" if download_url else DOWNLOAD_URL_ENV,
            NETRC_HINT,
        )
    elif entry.download_url:
        base = entry.download_url
    else:
        raise OperationError("catalogue: pulumi has no download_url; reinstall oscar-deploy")
    system = system or platform.system()
    machine = machine or platform.machine()
    if system not in OS_NAMES or machine.lower() not in ARCH_NAMES:
        raise OperationError(
            f"pulumi CLI: no upstream build for {system}/{machine}; install pulumi yourself and put it on PATH"
        )
    return PulumiRelease(
        version=(version or entry.version).removeprefix("v"),
        download_url=base,
        os=OS_NAMES[system],
        arch=ARCH_NAMES[machine.lower()],
    )


def data_root() -> Path:
    """`oscar-deploy/pulumi/` in the user's data folder: one sub-folder per installed version."""
    import platformdirs

    return Path(platformdirs.user_data_dir("oscar-deploy")) / "pulumi"


def install_dir(version: str) -> Path:
    return data_root() / version


@dataclass(frozen=True)
class PulumiLocation:
    path: Path
    source: Literal["path", "installed"]


def find_pulumi(version: str) -> PulumiLocation | None:
    """A `pulumi` on PATH, else the pinned version in the data folder, else None."""
    on_path = shutil.which("pulumi")
    if on_path:
        return PulumiLocation(Path(on_path), "path")
    binary = install_dir(version) / "bin" / "pulumi"
    if binary.is_file() and os.access(binary, os.X_OK):
        return PulumiLocation(binary, "installed")
    return None


def cli_version(binary: Path) -> tuple[int, int, int] | None:
    """`pulumi version` as numbers, or None when it does not run or prints something else."""
    env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    try:
        completed = subprocess.run(
            [str(binary), "version"],
            capture_output=True,
            text=True,
            env=env,
            timeout=VERSION_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_version(completed.stdout) if completed.returncode == 0 else None


def parse_version(text: str) -> tuple[int, int, int] | None:
    core = text.strip().removeprefix("v").split("-", 1)[0].split("+", 1)[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def format_version(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


def manual_install_command(release: PulumiRelease) -> str:
    """The shell line that does what `install_pulumi` does, for a machine we could not download on."""
    target = install_dir(release.version) / "bin"
    return f"mkdir -p {target} && curl -fsSL {release.url(release.archive)} | tar -xz -C {target} --strip-components=1"


def install_pulumi(
    release: PulumiRelease, downloader: Downloader, log: Callable[[str], None] = lambda _line: None
) -> Path:
    """Download, verify and unpack `release` into the data folder; returns the `pulumi` binary."""
    target = install_dir(release.version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{release.version}.", suffix=".partial", dir=target.parent))
    try:
        checksums = staging / release.checksums
        try:
            downloader.fetch(release.url(release.checksums), checksums, label=release.checksums)
        except DownloadUnreachable:
            host = urlsplit(release.download_url).netloc or release.download_url
            raise OperationError(
                f"pulumi CLI v{release.version}: not on PATH and not in {target}, and {host} cannot be reached "
                f"(offline?); install it by hand: {manual_install_command(release)}"
            ) from None
        expected = parse_checksums(checksums.read_text(), release.checksums).get(release.archive)
        if expected is None:
            raise OperationError(
                f"{release.checksums}: lists no {release.archive}; check the pulumi version and the download URL"
            )
        archive = staging / release.archive
        downloader.fetch(release.url(release.archive), archive, expected, label=release.archive)
        _unpack(archive, staging / "bin")
        binary = staging / "bin" / "pulumi"
        if not binary.is_file():
            raise OperationError(f"{release.archive}: holds no pulumi binary; check the download URL")
        archive.unlink()
        checksums.unlink()
        if (target / "bin" / "pulumi").is_file():
            return target / "bin" / "pulumi"  # another run installed it meanwhile: keep the one it may be using
        if target.exists():
            shutil.rmtree(target)  # an earlier install that lost its binary
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"pulumi CLI v{release.version}: installed in {target}")
    return target / "bin" / "pulumi"


def _unpack(archive: Path, destination: Path) -> None:
    """Unpack upstream's tarball (`pulumi/<binary>`, older ones `pulumi/bin/<binary>`) flat into `destination`.

    Every member is checked before it is written: plain files and folders under `pulumi/`, links only to a
    sibling; anything else (absolute paths, `..`, devices) refuses the archive.
    """
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            relative = _member_path(member.name, archive)
            if relative is None:
                continue
            path = destination / relative
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise OperationError(f"{archive.name}: cannot read {member.name}; the archive is damaged")
                with source, path.open("wb") as handle:
                    shutil.copyfileobj(source, handle)
                path.chmod(0o755 if member.mode & 0o111 else 0o644)
            elif member.issym() and "/" not in member.linkname and member.linkname not in ("", ".", ".."):
                path.symlink_to(member.linkname)
            else:
                raise OperationError(f"{archive.name}: unexpected entry {member.name}; refusing the archive")


def _member_path(name: str, archive: Path) -> PurePosixPath | None:
    parts = PurePosixPath(name).parts
    if not parts or parts[0] != "pulumi" or any(part in ("..", "/") for part in parts):
        raise OperationError(f"{archive.name}: unexpected path {name}; refusing the archive")
    rest = parts[1:]
    if rest[:1] == ("bin",):
        rest = rest[1:]
    return PurePosixPath(*rest) if rest else None


def ensure_pulumi(
    reporter: DownloadReporter | None = None,
    log: Callable[[str], None] = lambda _line: None,
    release: PulumiRelease | None = None,
) -> Path:
    """The `pulumi` binary to use: found, or installed now. A CLI on PATH older than the minimum is refused."""
    release = release or pulumi_release()
    found = find_pulumi(release.version)
    if found is None:
        downloader = Downloader(reporter)
        try:
            return install_pulumi(release, downloader, log)
        finally:
            downloader.close()
    if found.source == "path":
        version = cli_version(found.path)
        if version is None or version < MINIMUM_VERSION:
            shown = f"v{format_version(version)}" if version else "a version it does not report"
            raise OperationError(
                f"{found.path}: pulumi {shown} is older than v{format_version(MINIMUM_VERSION)} that oscar-deploy "
                f"needs; upgrade it, or take it off PATH and oscar-deploy installs v{release.version} itself"
            )
    return found.path


def pulumi_doctor_check() -> Check:
    """Whether the CLI is on PATH, installed in the data folder, or will be installed on first use."""
    purpose = "drives the infrastructure and platform stacks"
    try:
        release = pulumi_release()
    except OperationError as exc:
        return Check("pulumi cli", "missing", str(exc), "install pulumi and put it on PATH", ("openstack", "aws"))
    found = find_pulumi(release.version)
    if found is None:
        return Check(
            "pulumi cli",
            "warn",
            f"not on PATH; v{release.version} will be installed into {install_dir(release.version)} on first use "
            f"({purpose})",
            f"offline, install it by hand: {manual_install_command(release)}",
        )
    if found.source == "installed":
        return Check("pulumi cli", "ok", f"{found.path} (v{release.version}, installed by oscar-deploy; {purpose})")
    version = cli_version(found.path)
    if version is None or version < MINIMUM_VERSION:
        shown = f"v{format_version(version)}" if version else "does not report its version"
        return Check(
            "pulumi cli",
            "missing",
            f"{found.path} on PATH: {shown}, older than v{format_version(MINIMUM_VERSION)} ({purpose})",
            f"upgrade it, or take it off PATH and oscar-deploy installs v{release.version} into "
            f"{install_dir(release.version)}",
            ("openstack", "aws"),
        )
    return Check("pulumi cli", "ok", f"{found.path} on PATH (v{format_version(version)}; {purpose})")
