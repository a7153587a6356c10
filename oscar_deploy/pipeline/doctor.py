"""`doctor`: what this machine has for each target, from the checks every target shares and each provider's own.

Every problem is one line saying what is missing and the exact command that fixes it; a check that only one
target needs never blocks another.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable

from oscar_deploy.iac.pulumi_cli import pulumi_doctor_check
from oscar_deploy.providers.registry import PROVIDERS
from oscar_deploy.spec.models import TARGETS
from oscar_deploy.support.checks import Check, find_tool

# What every target needs in this Python: the CLI, the spec, Ansible, the platform and service clients.
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


def python_check() -> Check:
    missing = [name for name in PYTHON_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return Check(
            "python packages",
            "missing",
            f"not importable: {', '.join(missing)}",
            f"{sys.executable} -m pip install oscar-deploy (or pip install . in a checkout)",
            TARGETS,
        )
    return Check("python packages", "ok", f"{len(PYTHON_MODULES)} modules importable ({sys.executable})")


def tool_check(name: str, tool: str, fix: str, purpose: str) -> Check:
    path = find_tool(tool)
    if path:
        return Check(name, "ok", f"{path} ({purpose})")
    return Check(name, "missing", f"{tool}: not found on PATH ({purpose})", fix, TARGETS)


def skopeo_check() -> Check:
    """skopeo copies the platform's images into air-gap bundles; nothing else needs it, so it never blocks."""
    path = find_tool("skopeo")
    purpose = "`bundle build` copies the platform's images with it"
    if path:
        return Check("skopeo", "ok", f"{path} ({purpose})")
    return Check(
        "skopeo",
        "warn",
        f"skopeo: not found on PATH ({purpose}; a --k3s-only bundle does without)",
        "sudo apt-get install -y skopeo",
    )


def doctor_checks(target: str | None = None, node_arches: Iterable[str] = ()) -> list[Check]:
    """The shared checks, then those of `target`'s provider (of every provider when no target is given)."""
    checks = [
        python_check(),
        tool_check(
            "ssh client", "ssh", "sudo apt-get install -y openssh-client", "Ansible and `oscar-deploy ssh` use it"
        ),
        tool_check(
            "ansible",
            "ansible-playbook",
            f"{sys.executable} -m pip install 'ansible-core>=2.16,<2.22'",
            "configures nodes",
        ),
        pulumi_doctor_check(),
        skopeo_check(),
    ]
    for name, entry in PROVIDERS.items():
        if target is None or name == target:
            checks += entry.doctor_checks(node_arches if name == target else ())
    if target is not None and target not in PROVIDERS:
        checks.append(
            Check(
                f"target {target}",
                "missing",
                "no provider for it in this version",
                f"use target {' or '.join(PROVIDERS)}",
                (target,),
            )
        )
    return checks


def blocking(checks: Iterable[Check], target: str) -> list[Check]:
    """The checks whose failure stops `target`."""
    return [check for check in checks if check.status == "missing" and target in check.needed_for]
