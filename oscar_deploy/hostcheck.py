"""What this machine has and which of its quirks the local nodes must work around; `oscar-deploy doctor`.

Quirks are detected, never assumed, so a normal host (cgroup v2, crun, raisable limits) gets plain engine
defaults:

* cgroup v1 or hybrid hierarchy: crun cannot boot systemd nodes there, so nodes run with `--runtime runc`;
* no permission to raise resource limits (no CAP_SYS_RESOURCE, e.g. inside another container): the engine's
  default `nofile` limit cannot be applied, so nodes get explicit limits below the host's hard limits;
* a foreign architecture (arm64 on an x86_64 host) needs qemu-user registered with binfmt_misc.

Every problem is one line saying what is missing and the exact command that fixes it.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["ok", "warn", "missing"]
ALL_TARGETS = ("local", "openstack", "aws", "static")
INSTALL_SCRIPT = "bash scripts/install-system-packages.sh"
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
QEMU_NAMES = {"arm64": "aarch64", "amd64": "x86_64"}
# The engines' default for root: what a container gets unless limits are passed explicitly.
ENGINE_DEFAULT_NOFILE = 1048576
NODE_NOFILE_CAP = 65536
NODE_NPROC_CAP = 32768
PYTHON_MODULES = (
    "typer",
    "rich",
    "pydantic",
    "yaml",
    "jinja2",
    "cryptography",
    "ansible",
    "ansible_runner",
    "pulumi",
    "boto3",
    "kubernetes",
    "httpx",
)


@dataclass(frozen=True)
class Check:
    """One line of `doctor`: what was checked, how it went, what was found, and the fix when not ok."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    # Targets that cannot work while this check is `missing`.
    needed_for: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "needed_for": list(self.needed_for),
        }


def find_tool(name: str) -> str | None:
    """A command on PATH, or beside this Python (a virtual environment's bin/ need not be on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.is_file() and os.access(sibling, os.X_OK) else None


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
    from oscar_deploy.providers.node_image import host_arch

    if arch == host_arch():
        return True, f"{arch} is this host's architecture", ""
    qemu = QEMU_NAMES.get(arch, arch)
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


def _python_check() -> Check:
    missing = [name for name in PYTHON_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return Check(
            "python packages",
            "missing",
            f"not importable: {', '.join(missing)}",
            f"{sys.executable} -m pip install oscar-deploy (or pip install . in a checkout)",
            ALL_TARGETS,
        )
    return Check("python packages", "ok", f"{len(PYTHON_MODULES)} modules importable ({sys.executable})")


def _extra_check(extra: str) -> Check:
    """The cloud SDKs of one target, installed by the package extra of the same name."""
    from oscar_deploy.extras import EXTRA_MODULES, install_command

    missing = [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]
    if missing:
        return Check(
            f"{extra} sdk",
            "missing",
            f"not importable: {', '.join(missing)} (target {extra} only)",
            install_command(extra),
            (extra,),
        )
    return Check(f"{extra} sdk", "ok", f"{', '.join(EXTRA_MODULES[extra])} importable")


def _tool_check(
    name: str, tool: str, fix: str, needed_for: tuple[str, ...], purpose: str, absent: Status = "missing"
) -> Check:
    path = find_tool(tool)
    if path:
        return Check(name, "ok", f"{path} ({purpose})")
    return Check(name, absent, f"{tool}: not found on PATH ({purpose})", fix, needed_for)


def _engine_checks() -> list[Check]:
    podman = find_tool("podman")
    if podman is None:
        return [
            Check(
                "podman",
                "missing",
                "podman: not found on PATH (runs local nodes)",
                "sudo apt-get install -y podman runc (or " + INSTALL_SCRIPT + ")",
                ("local",),
            )
        ]
    result = subprocess.run([podman, "info", "--format", "{{.Host.OCIRuntime.Name}}"], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return [Check("podman", "missing", f"{podman} info failed: {last}", "podman system reset", ("local",))]
    checks = [Check("podman", "ok", f"{podman} (default runtime {result.stdout.strip()})")]
    docker = find_tool("docker")
    if docker:
        checks.append(Check("docker", "warn", f"{docker} found; local nodes use podman only", ""))
    return checks


def _node_image_check() -> Check:
    from oscar_deploy.providers.engine import ContainerEngine
    from oscar_deploy.providers.node_image import RECIPE_LABEL, image_tag, recipe_digest

    podman = find_tool("podman")
    if podman is None:
        return Check("node images", "warn", "podman missing: cannot look at the image cache")
    engine = ContainerEngine(binary=podman)
    states = []
    for arch in ("amd64", "arm64"):
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
    return Check(f"{arch} emulation", "missing" if needed else "warn", detail, fix, ("local",) if needed else ())


def _pulumi_check() -> Check:
    path = find_tool("pulumi") or (
        str(Path.home() / ".pulumi" / "bin" / "pulumi") if (Path.home() / ".pulumi/bin/pulumi").is_file() else None
    )
    if path:
        return Check("pulumi cli", "ok", f"{path} (openstack and aws infrastructure)")
    return Check(
        "pulumi cli",
        "missing",
        "pulumi: not found (needed by targets openstack and aws only)",
        "curl -fsSL https://get.pulumi.com | sh  (then add ~/.pulumi/bin to PATH)",
        ("openstack", "aws"),
    )


def _openstack_credentials_check() -> Check:
    if os.environ.get("OS_CLOUD") or os.environ.get("OS_AUTH_URL"):
        found = "OS_CLOUD" if os.environ.get("OS_CLOUD") else "OS_AUTH_URL"
        return Check("openstack credentials", "ok", f"{found} is set")
    for folder in (Path.cwd(), Path.home() / ".config" / "openstack", Path("/etc/openstack")):
        candidate = folder / "clouds.yaml"
        if candidate.is_file():
            return Check("openstack credentials", "ok", f"{candidate} exists")
    return Check(
        "openstack credentials",
        "missing",
        "no clouds.yaml (./, ~/.config/openstack/, /etc/openstack/) and no OS_CLOUD/OS_AUTH_URL",
        "download clouds.yaml from your dashboard (Identity > Application Credentials) to ~/.config/openstack/",
        ("openstack",),
    )


def _aws_credentials_check() -> Check:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        if os.environ.get(variable):
            return Check("aws credentials", "ok", f"{variable} is set")
    for candidate in (Path.home() / ".aws" / "credentials", Path.home() / ".aws" / "config"):
        if candidate.is_file():
            return Check("aws credentials", "ok", f"{candidate} exists")
    return Check(
        "aws credentials",
        "missing",
        "no AWS_ACCESS_KEY_ID/AWS_PROFILE and no ~/.aws/credentials",
        "aws configure (or export AWS_PROFILE=<profile>)",
        ("aws",),
    )


def doctor_checks(node_arches: Iterable[str] = ()) -> list[Check]:
    """Every check `doctor` prints, for all targets; emulation of `node_arches` is required, others optional."""
    from oscar_deploy.providers.node_image import host_arch

    node_arches = set(node_arches)
    mode = cgroup_mode()
    _, runtime_line = runtime_check(mode)
    _, ulimit_line = ulimit_check()
    return [
        _python_check(),
        _tool_check(
            "ssh client",
            "ssh",
            "sudo apt-get install -y openssh-client",
            ALL_TARGETS,
            "Ansible and `oscar-deploy ssh` reach nodes with it",
        ),
        _tool_check(
            "ansible",
            "ansible-playbook",
            f"{sys.executable} -m pip install 'ansible-core>=2.16,<2.22'",
            ALL_TARGETS,
            "configures nodes",
        ),
        *_engine_checks(),
        Check("cgroup", "ok", f"{mode} hierarchy"),
        runtime_line,
        ulimit_line,
        *(_emulation_check(arch, arch in node_arches) for arch in QEMU_NAMES if arch != host_arch()),
        _debootstrap_check(),
        _node_image_check(),
        _pulumi_check(),
        _extra_check("openstack"),
        _extra_check("aws"),
        _openstack_credentials_check(),
        _aws_credentials_check(),
    ]


def blocking(checks: Iterable[Check], target: str) -> list[Check]:
    """The checks whose failure stops `target`."""
    return [check for check in checks if check.status == "missing" and target in check.needed_for]
