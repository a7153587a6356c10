"""What this machine has for local nodes and which of its quirks they must work around; their `doctor` lines.

Quirks are detected, never assumed, so a normal host (cgroup v2, crun, raisable limits) gets plain engine
defaults:

* cgroup v1 or hybrid hierarchy: crun cannot boot systemd nodes there, so nodes run with `--runtime runc`;
* no permission to raise resource limits (no CAP_SYS_RESOURCE, e.g. inside another container): the engine's
  default `nofile` limit cannot be applied, so nodes get explicit limits below the host's hard limits;
* a foreign architecture (arm64 on an x86_64 host) needs qemu-user registered with binfmt_misc.

Every problem is one line saying what is missing and the exact command that fixes it.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from oscar_deploy.providers.local.engine import ContainerEngine
from oscar_deploy.providers.local.node_image import RECIPE_LABEL, host_arch, image_tag, recipe_digest
from oscar_deploy.spec.arches import ARCHES, NODE_ARCHES
from oscar_deploy.support import process_group
from oscar_deploy.support.checks import Check, find_tool

INSTALL_SCRIPT = "bash scripts/install-system-packages.sh"
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
# The engines' default for root: what a container gets unless limits are passed explicitly.
ENGINE_DEFAULT_NOFILE = 1048576
NODE_NOFILE_CAP = 65536
NODE_NPROC_CAP = 32768


# --- host facts ---------------------------------------------------------------------------------------------


def cgroup_mode(mounts_file: Path = Path("/proc/mounts")) -> str:
    """`v2` (unified), `hybrid` (v1 controllers plus a v2 tree) or `v1`, from what is mounted where."""
    mounts = {}
    for line in mounts_file.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            mounts[parts[1]] = parts[2]
    if mounts.get("/sys/fs/cgroup") == "cgroup2":
        return "v2"
    if mounts.get("/sys/fs/cgroup/unified") == "cgroup2":
        return "hybrid"
    return "v1"


def can_raise_nofile(limit: int = ENGINE_DEFAULT_NOFILE) -> bool:
    """Whether a child process may raise its open-files limit to the engine's default (needs privilege)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= limit:
        return True
    probe = f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False).returncode == 0


def explicit_ulimits() -> list[str]:
    """Limits at or below the host's hard limits, for hosts where the engine's defaults cannot be applied."""
    nofile = _capped(resource.getrlimit(resource.RLIMIT_NOFILE)[1], NODE_NOFILE_CAP)
    nproc = _capped(resource.getrlimit(resource.RLIMIT_NPROC)[1], NODE_NPROC_CAP)
    return [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]


def _capped(hard: int, cap: int) -> int:
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


def foreign_arch_ready(arch: str, binfmt_dir: Path = BINFMT_DIR) -> tuple[bool, str, str]:
    """(ready, what was found, fix) for running `arch` binaries on this host through qemu-user."""
    if arch == host_arch():
        return True, f"{arch} is this host's architecture", ""
    qemu = ARCHES[arch].qemu if arch in ARCHES else arch
    if not (binfmt_dir / "status").exists():
        return (
            False,
            "binfmt_misc is not mounted",
            "sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && "
            f"sudo update-binfmts --enable qemu-{qemu}",
        )
    entry = binfmt_dir / f"qemu-{qemu}"
    if not entry.exists():
        if find_tool(f"qemu-{qemu}-static") is None:
            return (
                False,
                f"qemu-{qemu}-static is not installed",
                "sudo apt-get install -y qemu-user-static binfmt-support",
            )
        return False, f"qemu-{qemu} is not registered with binfmt_misc", f"sudo update-binfmts --enable qemu-{qemu}"
    if not entry.read_text().startswith("enabled"):
        return False, f"qemu-{qemu} is registered but disabled", f"sudo update-binfmts --enable qemu-{qemu}"
    return True, f"qemu-{qemu} registered with binfmt_misc", ""


# --- what the local provider applies ------------------------------------------------------------------------


@dataclass(frozen=True)
class HostProfile:
    """The quirks of this host that local nodes work around, and the engine flags that follow."""

    cgroup: str
    runtime: str | None
    ulimits: tuple[str, ...]
    problems: tuple[Check, ...] = field(default=())

    def run_flags(self) -> list[str]:
        flags = ["--runtime", self.runtime] if self.runtime else []
        for limit in self.ulimits:
            flags += ["--ulimit", limit]
        return flags

    def describe(self) -> str:
        runtime = f"runtime {self.runtime}" if self.runtime else "engine's default runtime"
        limits = f"ulimits {', '.join(self.ulimits)}" if self.ulimits else "engine's default ulimits"
        return f"cgroup {self.cgroup}, {runtime}, {limits}"


def runtime_check(mode: str | None = None) -> tuple[str | None, Check]:
    """The OCI runtime nodes need here, and the doctor line saying so."""
    mode = mode or cgroup_mode()
    if mode == "v2":
        return None, Check("oci runtime", "ok", "cgroup v2: engine default (crun or runc)")
    if find_tool("runc") or Path("/usr/sbin/runc").exists():
        return "runc", Check(
            "oci runtime", "ok", f"cgroup {mode}: nodes run with --runtime runc (systemd nodes need runc on cgroup v1)"
        )
    return None, Check(
        "oci runtime",
        "missing",
        f"cgroup {mode}: crun cannot boot systemd nodes and runc is not installed",
        "sudo apt-get install -y runc",
        ("local",),
    )


def ulimit_check() -> tuple[list[str], Check]:
    if can_raise_nofile():
        return [], Check("ulimits", "ok", "limits can be raised: engine defaults")
    limits = explicit_ulimits()
    return limits, Check(
        "ulimits", "ok", f"raising limits not permitted: nodes get explicit --ulimit {' --ulimit '.join(limits)}"
    )


def local_host_profile(arches: Iterable[str] = ()) -> HostProfile:
    """Detect this host's quirks for local nodes of `arches`; `problems` lists what must be fixed first."""
    mode = cgroup_mode()
    runtime, runtime_line = runtime_check(mode)
    limits, _ = ulimit_check()
    problems = [runtime_line] if runtime_line.status == "missing" else []
    for arch in sorted(set(arches)):
        ready, detail, fix = foreign_arch_ready(arch)
        if not ready:
            problems.append(Check(f"{arch} emulation", "missing", detail, fix, ("local",)))
    return HostProfile(cgroup=mode, runtime=runtime, ulimits=tuple(limits), problems=tuple(problems))


# --- doctor ---------------------------------------------------------------------------------------------------

LOCAL = ("local",)


def doctor_checks(node_arches: Iterable[str] = ()) -> list[Check]:
    """The lines target local adds to `doctor`: engine, quirks, emulation (required for `node_arches`), images."""
    wanted = set(node_arches)
    mode = cgroup_mode()
    _, runtime_line = runtime_check(mode)
    _, ulimit_line = ulimit_check()
    return [
        *_engine_checks(),
        Check("cgroup", "ok", f"{mode} hierarchy"),
        runtime_line,
        ulimit_line,
        *(_emulation_check(arch, arch in wanted) for arch in NODE_ARCHES if arch != host_arch()),
        _debootstrap_check(),
        _node_image_check(),
    ]


def _engine_checks() -> list[Check]:
    podman = find_tool("podman")
    if podman is None:
        return [
            Check(
                "podman",
                "missing",
                "podman: not found on PATH (runs local nodes)",
                "sudo apt-get install -y podman runc (or " + INSTALL_SCRIPT + ")",
                LOCAL,
            )
        ]
    result = process_group.run(
        [podman, "info", "--format", "{{.Host.OCIRuntime.Name}}"], capture_output=True, text=True
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return [Check("podman", "missing", f"{podman} info failed: {last}", "podman system reset", LOCAL)]
    checks = [Check("podman", "ok", f"{podman} (default runtime {result.stdout.strip()})")]
    docker = find_tool("docker")
    if docker:
        checks.append(Check("docker", "warn", f"{docker} found; local nodes use podman only", ""))
    return checks


def _node_image_check() -> Check:
    podman = find_tool("podman")
    if podman is None:
        return Check("node images", "warn", "podman missing: cannot look at the image cache")
    engine = ContainerEngine(binary=podman)
    states = []
    for arch in NODE_ARCHES:
        label = engine.image_label(image_tag(arch), RECIPE_LABEL)
        state = "not built" if label is None else "cached" if label == recipe_digest() else "outdated recipe"
        states.append(f"{image_tag(arch)} {state}")
    return Check("node images", "ok", "; ".join(states) + " (`up` builds what is missing or outdated)")


def _debootstrap_check() -> Check:
    path = find_tool("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if path is None:
        return Check(
            "debootstrap",
            "warn",
            "debootstrap: not found (builds node images offline when no registry is reachable)",
            "sudo apt-get install -y debootstrap",
        )
    root = "as root" if os.geteuid() == 0 else "needs root: run the first `up` as root"
    return Check("debootstrap", "ok", f"{path} (offline node image builds, {root})")


def _emulation_check(arch: str, needed: bool) -> Check:
    ready, detail, fix = foreign_arch_ready(arch)
    if ready:
        return Check(f"{arch} emulation", "ok", detail)
    return Check(f"{arch} emulation", "missing" if needed else "warn", detail, fix, LOCAL if needed else ())
