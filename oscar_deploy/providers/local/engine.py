"""A thin wrapper around the container engine's command line (podman).

Everything the local provider and the image builder ask of the engine goes through `ContainerEngine`, so the
flags a host needs (an OCI runtime, explicit ulimits) are decided once, by `oscar_deploy.providers.local.host`, and the
commands stay readable.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from oscar_deploy.support import process_group
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import parse_json

CLUSTER_LABEL = "io.oscar-deploy.cluster"
INSTALL_HINT = {
    "podman": "sudo apt-get install -y podman runc (or bash scripts/install-system-packages.sh)",
}


@dataclass
class ContainerEngine:
    """The engine's binary; the flags a host needs come from `host.HostProfile.run_flags()`."""

    binary: str
    name: str = "podman"

    @classmethod
    def find(cls) -> ContainerEngine:
        """podman (the only engine the spec's `local.engine` allows so far), or a one-line error to install it."""
        binary = shutil.which("podman")
        if binary is None:
            raise UserInputError(f"podman: not found on PATH; install it: {INSTALL_HINT['podman']}")
        return cls(binary=binary)

    # --- plumbing -----------------------------------------------------------------------------------------
    def run(
        self, args: Sequence[str], *, check: bool = True, input_text: str | None = None, timeout: float | None = 600
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = process_group.run(
                [self.binary, *args],
                input=input_text,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise OperationError(f"{self.name} {' '.join(args[:2])}: no answer after {timeout:.0f}s") from exc
        if check and result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            last = detail[-1] if detail else f"exit code {result.returncode}"
            raise OperationError(f"{self.name} {' '.join(args[:2])} failed: {last}")
        return result

    def json(self, args: Sequence[str]) -> Any:
        output = self.run(args).stdout.strip()
        return parse_json(output) if output else []

    # --- images -------------------------------------------------------------------------------------------
    def image_label(self, image: str, label: str) -> str | None:
        """A label of a local image, or None when the image does not exist."""
        result = self.run(["image", "inspect", image], check=False)
        if result.returncode != 0:
            return None
        data = parse_json(result.stdout)
        labels = (data[0].get("Labels") or {}) if data else {}
        value = labels.get(label)
        return str(value) if value is not None else ""

    def image_id(self, image: str) -> str | None:
        result = self.run(["image", "inspect", "--format", "{{.Id}}", image], check=False)
        return result.stdout.strip() or None if result.returncode == 0 else None

    def image_exists(self, image: str) -> bool:
        return self.run(["image", "exists", image], check=False).returncode == 0

    # --- containers, networks, volumes --------------------------------------------------------------------
    def containers(self, label: str) -> list[dict[str, Any]]:
        """`inspect` data of every container (running or not) carrying `label` (key=value)."""
        ids = self.run(["ps", "-a", "-q", "--no-trunc", "--filter", f"label={label}"]).stdout.split()
        if not ids:
            return []
        data: list[dict[str, Any]] = self.json(["container", "inspect", *ids])
        return data

    def networks(self, label: str) -> list[str]:
        return self.run(["network", "ls", "-q", "--filter", f"label={label}", "--format", "{{.Name}}"]).stdout.split()

    def volumes(self, label: str) -> list[str]:
        return self.run(["volume", "ls", "-q", "--filter", f"label={label}"]).stdout.split()

    def network_exists(self, name: str) -> bool:
        return self.run(["network", "exists", name], check=False).returncode == 0
