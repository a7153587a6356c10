"""The files on `oscar-pvc` that every OSCAR service pod runs, for clusters that mix amd64 and arm64 nodes.

OSCAR starts each service container with the command `/oscar/bin/fwatchdog` and `fprocess=/oscar/bin/supervisor`
(or `/oscar/bin/alpine/supervisor` for Alpine images), from one shared ReadWriteMany volume
(O:pkg/types/service.go ToPodSpec, GetSupervisorPath). One volume cannot hold one binary that runs on both CPUs,
so those three paths are small POSIX shell scripts that pick the build of the CPU they run on, and the volume
carries both builds under a release folder:

    /oscar/bin/fwatchdog                    dispatcher -> <release>/<arch>/fwatchdog
    /oscar/bin/supervisor                   dispatcher -> <release>/<arch>/supervisor/supervisor
    /oscar/bin/alpine/supervisor            dispatcher -> <release>/<arch>/alpine/supervisor/supervisor
    /oscar/bin/<release>/{amd64,arm64}/...  the unpacked upstream releases

This needs `/bin/sh` and `uname` in every service image. Every working OSCAR service image has `/bin/sh`
already: the supervisor runs the user's script as `/bin/sh script.sh` (grycap/faas-supervisor
faassupervisor/faas/binary/supervisor.py). The kernel runs a `#!` script as the container command, and the
classic watchdog executes `fprocess` directly, so no OSCAR setting changes.

The Job that fills the volume downloads both CPUs' files, checks each against the catalogue's sha256 (a file
nobody has pinned yet is reported as UNPINNED with the digest it had), unpacks them into a new release folder,
then replaces the dispatchers and removes older release folders. On a cluster installed from an air-gap bundle
it copies the same files from the bundle's folder on the servers instead (mounted at BUNDLE_MOUNT), checked
against the digests the bundle recorded.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass

from oscar_deploy.platform.model import OfflinePlatform
from oscar_deploy.spec.catalogue import Catalogue
from oscar_deploy.support.errors import UserInputError

ARCHES = ("amd64", "arm64")
MOUNT_PATH = "/oscar/bin"
# Where the populate Job sees the bundle's files folder of its server (a read-only hostPath).
BUNDLE_MOUNT = "/bundle"

_ARCH_CASE = """case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "oscar-deploy: no OSCAR binaries for CPU $(uname -m) (only amd64 and arm64)" >&2; exit 126 ;;
esac"""


def fwatchdog_dispatcher(release: str) -> str:
    return f"""#!/bin/sh
# Written by oscar-deploy: runs the OpenFaaS watchdog built for this node's CPU.
{_ARCH_CASE}
OSCAR_BIN_ARCH=$arch
export OSCAR_BIN_ARCH
exec "${{0%/*}}/{release}/$arch/fwatchdog" "$@"
"""


def supervisor_dispatcher(release: str, alpine: bool) -> str:
    base = f"${{0%/*}}/../{release}/$arch/alpine" if alpine else f"${{0%/*}}/{release}/$arch"
    return f"""#!/bin/sh
# Written by oscar-deploy: runs the FaaS supervisor{" (Alpine build)" if alpine else ""} built for this CPU.
arch=${{OSCAR_BIN_ARCH:-}}
if [ -z "$arch" ]; then
{_indent(_ARCH_CASE)}
fi
exec "{base}/supervisor/supervisor" "$@"
"""


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


@dataclass(frozen=True)
class Download:
    arch: str
    url: str
    sha256: str | None
    target: str  # where it goes under the release folder of its arch
    unzip: bool


def downloads(catalogue: Catalogue) -> list[Download]:
    """Every file the volume needs, per CPU, from the catalogue's fwatchdog and faas_supervisor entries."""
    fwatchdog = catalogue["fwatchdog"]
    supervisor = catalogue["faas_supervisor"]
    result = []
    for arch in ARCHES:
        (watchdog_file,) = [f for f in fwatchdog.files if f.arch == arch]
        result.append(Download(arch, fwatchdog.file_url(watchdog_file.name), watchdog_file.sha256, "fwatchdog", False))
        for release_file in supervisor.files:
            if release_file.arch == arch:
                target = "alpine" if release_file.variant == "alpine" else "."
                url = supervisor.file_url(release_file.name)
                result.append(Download(arch, url, release_file.sha256, target, True))
    return result


def release_name(catalogue: Catalogue) -> str:
    """Names the release folder after what goes into it, so a new pin gets a new folder (and a new Job)."""
    material = "\n".join(f"{d.arch} {d.url} {d.sha256}" for d in downloads(catalogue))
    return "r-" + hashlib.sha256(material.encode()).hexdigest()[:10]


def populate_script(catalogue: Catalogue, offline: OfflinePlatform | None = None) -> str:
    """The POSIX shell script the Job runs (busybox or GNU tools): `sh populate.sh [DIR]`, DIR default /data.

    With `offline`, every file comes from the bundle's folder instead of its release URL: `sh populate.sh [DIR
    [FILES]]`, FILES default BUNDLE_MOUNT."""
    release = release_name(catalogue)
    if offline is not None:
        missing = [d.url for d in downloads(catalogue) if d.url not in offline.files]
        if missing:
            raise UserInputError(
                f"air-gap bundle: lacks {', '.join(missing)}; rebuild it with `oscar-deploy bundle build`"
            )
    pinned_by = "the bundle recorded" if offline else "the catalogue pins"
    get = (
        '  cp "$src/$1" "$3" || { echo "not in the air-gap bundle: $1" >&2; exit 1; }'
        if offline
        else '  wget -q -O "$3" "$1" || { echo "download failed: $1" >&2; exit 1; }'
    )
    lines = [
        "#!/bin/sh",
        "# Written by oscar-deploy: fills OSCAR's binaries volume for amd64 and arm64 nodes.",
        "set -eu",
        'dest="${1:-/data}"',
        *([f'src="${{2:-{BUNDLE_MOUNT}}}"'] if offline else []),
        f"release={release}",
        'if [ -d "$dest/$release" ] && grep -qs "/$release/" "$dest/fwatchdog"; then',
        '  echo "oscar-pvc already holds release $release"',
        "  exit 0",
        "fi",
        'stage="$dest/.$release.partial"',
        'rm -rf "$stage"',
        'mkdir -p "$stage"',
        "trap 'rm -rf \"$stage\"' EXIT",
        f"fetch() {{ # {'BUNDLED-NAME' if offline else 'URL'} SHA256-or-empty FILE",
        get,
        '  actual=$(sha256sum "$3" | cut -d" " -f1)',
        '  if [ -z "$2" ]; then',
        '    echo "UNPINNED $1 sha256=$actual"',
        '  elif [ "$actual" != "$2" ]; then',
        f'    echo "checksum mismatch: $1 has sha256 $actual, {pinned_by} $2" >&2',
        "    exit 1",
        "  fi",
        "}",
    ]
    for arch in ARCHES:
        lines.append(f'mkdir -p "$stage/{arch}/alpine"')
    for index, download in enumerate(downloads(catalogue)):
        bundled = offline.files[download.url] if offline else None
        sha = shlex.quote(bundled.sha256 if bundled else download.sha256 or "")
        source = shlex.quote(bundled.name if bundled else download.url)
        if download.unzip:
            archive = f'"$stage/download-{index}.zip"'
            lines.append(f"fetch {source} {sha} {archive}")
            lines.append(f'unzip -q -o {archive} -d "$stage/{download.arch}/{download.target}"')
            lines.append(f"rm -f {archive}")
        else:
            path = f'"$stage/{download.arch}/{download.target}"'
            lines.append(f"fetch {source} {sha} {path}")
            lines.append(f"chmod 0755 {path}")
    lines += [
        'rm -rf "$dest/$release"',
        'mv "$stage" "$dest/$release"',
        'mkdir -p "$dest/alpine"',
        *_write_dispatcher("fwatchdog", fwatchdog_dispatcher(release)),
        *_write_dispatcher("supervisor", supervisor_dispatcher(release, alpine=False)),
        *_write_dispatcher("alpine/supervisor", supervisor_dispatcher(release, alpine=True)),
        'for old in "$dest"/r-*; do',
        '  [ "$old" = "$dest/$release" ] || rm -rf "$old"',
        "done",
        'echo "oscar-pvc holds release $release for amd64 and arm64"',
    ]
    return "\n".join(lines) + "\n"


def _write_dispatcher(path: str, content: str) -> list[str]:
    # Written beside the target and renamed over it: a pod starting meanwhile sees the old or the new script.
    return [
        f"cat > \"$dest/{path}.new\" <<'DISPATCHER'",
        content.rstrip("\n"),
        "DISPATCHER",
        f'chmod 0755 "$dest/{path}.new"',
        f'mv -f "$dest/{path}.new" "$dest/{path}"',
    ]
