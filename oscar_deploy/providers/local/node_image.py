"""The base image of local nodes: Debian bookworm booting systemd and sshd, one image per CPU architecture.

Two ways to build the same image, both from `templates/local-node/` (package list and setup script):

* `containerfile`: `podman build` on the Debian image, when a registry can be reached or the Debian image
  is already in local storage;
* `debootstrap`: offline from the Debian package mirror alone (root needed), `podman import` of the result;
  a foreign architecture runs debootstrap's second stage in a chroot under qemu-user.

An image is built once per machine and architecture and reused while its recipe (the template files) is
unchanged: the recipe's digest is a label on the image, so a changed recipe rebuilds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from oscar_deploy.providers.local.engine import ContainerEngine
from oscar_deploy.spec.arches import canonical_arch
from oscar_deploy.support import process_group
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.layers import layer_dir
from oscar_deploy.support.progress import Progress

IMAGE_REPOSITORY = "localhost/oscar-deploy-node"
SUITE = "bookworm"
RECIPE_LABEL = "io.oscar-deploy.recipe"
SOURCE_ENV = "OSCAR_DEPLOY_NODE_IMAGE_SOURCE"
CACHE_ENV = "OSCAR_DEPLOY_CACHE"
MIRROR_ENV = "OSCAR_DEPLOY_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_IMAGE = f"docker.io/library/debian:{SUITE}"
REGISTRY_HOST = "registry-1.docker.io"
SOURCES = ("auto", "containerfile", "debootstrap")
RECIPE_FILES = ("Containerfile", "packages.txt", "setup-node.sh")
# Bump when the build steps in this module change in a way the template files do not show.
BUILDER_VERSION = "1"


def host_arch() -> str:
    machine = platform.machine().lower()
    return canonical_arch(machine) or machine


def image_tag(arch: str) -> str:
    return f"{IMAGE_REPOSITORY}:{SUITE}-{arch}"


def recipe_dir() -> Path:
    return layer_dir("templates") / "local-node"


def recipe_digest() -> str:
    """Digest of everything that decides the image's content."""
    digest = hashlib.sha256(f"{SUITE}\n{BUILDER_VERSION}\n".encode())
    for name in RECIPE_FILES:
        digest.update(name.encode() + b"\0" + (recipe_dir() / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def packages() -> list[str]:
    lines = (recipe_dir() / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def cache_root() -> Path:
    """Where debootstrap keeps downloaded packages and build logs: outside every cluster's state folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("oscar-deploy"))


def registry_reachable(host: str = REGISTRY_HOST, timeout: float = 3.0) -> bool:
    """Whether the registry's name resolves and its HTTPS port answers (no request is sent)."""
    try:
        addresses = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.settimeout(timeout)
            try:
                probe.connect(address)
            except OSError:
                continue
            return True
    return False


class NodeImageBuilder:
    """Makes sure the node image for an architecture exists, building it the way this host allows."""

    def __init__(self, engine: ContainerEngine, progress: Progress | None = None) -> None:
        self.engine = engine
        self.progress = progress or Progress()

    def is_current(self, arch: str) -> bool:
        return self.engine.image_label(image_tag(arch), RECIPE_LABEL) == recipe_digest()

    def choose_source(self, arch: str) -> tuple[str, str]:
        """(`containerfile` or `debootstrap`, why): the env override, else what this host can do."""
        wanted = os.environ.get(SOURCE_ENV, "auto")
        if wanted not in SOURCES:
            raise UserInputError(f"{SOURCE_ENV}={wanted}: unknown image source; use one of {', '.join(SOURCES)}")
        if wanted != "auto":
            return wanted, f"{SOURCE_ENV}={wanted}"
        local_base = self._local_base(arch)
        if local_base:
            return "containerfile", f"{local_base} is in local storage"
        if registry_reachable():
            return "containerfile", f"{REGISTRY_HOST} is reachable"
        return "debootstrap", f"no registry reachable ({REGISTRY_HOST}); building offline from the Debian mirror"

    def _local_base(self, arch: str) -> str | None:
        """The Debian image for `arch` if local storage has it: tagged `<base>-<arch>` (any arch), or the
        plain tag for the host's own arch."""
        candidates = [f"{BASE_IMAGE}-{arch}"] + ([BASE_IMAGE] if arch == host_arch() else [])
        return next((image for image in candidates if self.engine.image_exists(image)), None)

    def ensure(self, arch: str) -> str:
        """The image tag for `arch`, built first if it is missing or its recipe changed."""
        tag = image_tag(arch)
        if self.is_current(arch):
            return tag
        cache = cache_root()
        cache.mkdir(parents=True, exist_ok=True)
        with _locked(cache / f"build-{arch}.lock"):
            if self.is_current(arch):  # another process built it while we waited
                return tag
            source, reason = self.choose_source(arch)
            self.progress.note(f"node image {tag}: building with {source} ({reason})")
            previous = self.engine.image_id(tag)
            if source == "containerfile":
                self._build_with_containerfile(arch, tag)
            else:
                self._build_with_debootstrap(arch, tag, cache)
            if previous and previous != self.engine.image_id(tag):
                # The outdated image, unless nodes still run from it (then it goes with them).
                self.engine.run(["rmi", previous], check=False)
        return tag

    # --- containerfile ------------------------------------------------------------------------------------
    def _build_with_containerfile(self, arch: str, tag: str) -> None:
        base = self._local_base(arch) or BASE_IMAGE
        args = [
            "build",
            "--platform",
            f"linux/{arch}",
            "--build-arg",
            f"DEBIAN_IMAGE={base}",
            "--label",
            f"{RECIPE_LABEL}={recipe_digest()}",
            "-t",
            tag,
            "-f",
            str(recipe_dir() / "Containerfile"),
            str(recipe_dir()),
        ]
        with self.progress.step(f"building {tag} from the Containerfile"):
            self.engine.run(args, timeout=3600)

    # --- debootstrap --------------------------------------------------------------------------------------
    def _build_with_debootstrap(self, arch: str, tag: str, cache: Path) -> None:
        debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
        if debootstrap is None:
            raise UserInputError(
                "debootstrap: not found; install it: sudo apt-get install -y debootstrap "
                "(or make a registry reachable so the Containerfile path applies)"
            )
        if os.geteuid() != 0:
            raise UserInputError(
                "debootstrap needs root to build the node image offline; run `oscar-deploy up` as root once "
                f"(the image is cached), or set {SOURCE_ENV}=containerfile where a registry is reachable"
            )
        foreign = arch != host_arch()
        debs = cache / f"debs-{SUITE}-{arch}"
        debs.mkdir(parents=True, exist_ok=True)
        logs = cache / "logs"
        logs.mkdir(exist_ok=True)
        log = logs / f"node-image-{SUITE}-{arch}.log"
        mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
        minutes = "5-10 minutes: packages are configured under qemu-user emulation" if foreign else "2-4 minutes"
        with tempfile.TemporaryDirectory(prefix=f"rootfs-{arch}-", dir=cache) as work:
            rootfs = Path(work) / "rootfs"
            try:
                first_stage = [
                    debootstrap,
                    "--variant=minbase",
                    f"--arch={arch}",
                    f"--include={','.join(packages())}",
                    f"--cache-dir={debs}",
                    *(["--foreign"] if foreign else []),
                    SUITE,
                    str(rootfs),
                    mirror,
                ]
                with self.progress.step(f"debootstrap {SUITE} {arch} (about {minutes}; log: {log})"):
                    _logged(first_stage, log, f"debootstrap {arch}")
                    if foreign:
                        _logged(
                            ["chroot", str(rootfs), "/debootstrap/debootstrap", "--second-stage"],
                            log,
                            f"debootstrap second stage {arch}",
                            details=rootfs / "debootstrap" / "debootstrap.log",
                        )
                    setup = rootfs / "oscar-setup-node.sh"
                    shutil.copyfile(recipe_dir() / "setup-node.sh", setup)
                    _logged(["chroot", str(rootfs), "/bin/sh", f"/{setup.name}"], log, "node setup script")
                    setup.unlink()
                with self.progress.step(f"importing {tag}"):
                    self._import(rootfs, arch, tag)
            finally:
                _unmount_below(rootfs)

    def _import(self, rootfs: Path, arch: str, tag: str) -> None:
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(rootfs), "-cf", "-", "."],
            stdout=subprocess.PIPE,
        )
        try:
            result = process_group.run(
                [
                    self.engine.binary,
                    "import",
                    "--quiet",
                    "--arch",
                    arch,
                    "--change",
                    'CMD ["/sbin/init"]',
                    "--change",
                    "STOPSIGNAL SIGRTMIN+3",
                    "--change",
                    f"LABEL {RECIPE_LABEL}={recipe_digest()}",
                    "-",
                    tag,
                ],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait()
        if result.returncode != 0 or tar.returncode != 0:
            raise OperationError(f"podman import of {tag} failed: {result.stderr.strip() or 'tar failed'}")


def _logged(command: list[str], log: Path, what: str, details: Path | None = None) -> None:
    """Run a long command with its output appended to `log`; on failure, name the log and its last line.

    `details` is a log the command keeps elsewhere (debootstrap's own, inside the root file system): it is
    copied into `log` on failure, since the root file system is deleted afterwards."""
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        code = process_group.run(command, stdout=handle, stderr=subprocess.STDOUT).returncode
        if code != 0 and details is not None and details.is_file():
            handle.write(f"--- {details.name}\n{details.read_text(errors='replace')}")
    if code != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        last = lines[-1] if lines else ""
        raise OperationError(f"{what} failed (exit code {code}): {last}; full log: {log}")


def _unmount_below(root: Path) -> None:
    """Unmount whatever a failed debootstrap left mounted inside the root file system, deepest first."""
    prefix = f"{root}/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if len(line.split()) > 1]
    for mount_point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build per architecture at a time on this machine (parallel test runs share the cache)."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
