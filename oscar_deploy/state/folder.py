"""The state folder: one private folder per cluster holding everything `up` made and learnt.

Layout (all written atomically; the folder is 0700, every file in it 0600 but the public key):

    <root>/<cluster>/
        spec.yaml          the spec as last applied
        secrets.yaml       generated secrets (never defaults, never printed)
        ssh/id_ed25519     the cluster's SSH key pair (+ .pub)
        inventory.yml      Ansible inventory written from the provider's nodes
        kubeconfig         admin kubeconfig, server address reachable from the controller
        journal.json       which phases of `up` completed, when, and with which inputs
        desired.json       desired state commands set (the worker count of `scale`)
        lock               held (flock) by the one operation running on the cluster, with a note of it
        run/               one private folder per running playbook (ansible-runner's files: variables, the
                           token file, facts, ssh control sockets); left only by a crashed run, and removed
                           when the next operation takes the lock
        logs/              full logs of each run
        pulumi/            Pulumi's file backend (.pulumi/), the passphrase file for its secrets and one
                           working folder per Pulumi project (projects/<project>/: Pulumi.yaml, stack config)

The root is `$OSCAR_DEPLOY_HOME` when set, else `clusters/` under the user's data folder.
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import yaml

from oscar_deploy.spec.models import NAME_RULE, is_cluster_name, shown_name
from oscar_deploy.state.desired import DesiredState
from oscar_deploy.state.journal import Journal
from oscar_deploy.state.lock import hold
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import atomic_write, make_private_dirs, shown_path
from oscar_deploy.support.guard import GUARD_PID_FILE, stop_leftover

STATE_HOME_ENV = "OSCAR_DEPLOY_HOME"
SECRET_ALPHABET = string.ascii_letters + string.digits
DEFAULT_SECRET_LENGTH = 32
# What a removed state folder is renamed to first (hidden, never a cluster name): `.<cluster>.removed-<random>`.
REMOVED_MARK = ".removed-"


def state_root() -> Path:
    """Folder holding one sub-folder per cluster."""
    override = os.environ.get(STATE_HOME_ENV)
    if override:
        root = Path(override).expanduser()
        existing = root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            what = "is not a folder" if existing == root else f"is under {shown_path(existing)}, which is not a folder"
            raise UserInputError(
                f"{STATE_HOME_ENV}={shown_path(override)}: {what}; point it at a folder (created if missing)"
            )
        return root
    import platformdirs

    return Path(platformdirs.user_data_dir("oscar-deploy")) / "clusters"


def list_clusters() -> list[str]:
    root = state_root()
    if not root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in root.iterdir()
        if is_cluster_name(entry.name) and ((entry / "spec.yaml").is_file() or (entry / "journal.json").is_file())
    )


def generate_secret(length: int = DEFAULT_SECRET_LENGTH) -> str:
    """A random secret of letters and digits: safe in YAML, URLs-free handling and shell without quoting."""
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(length))


def cluster_state(name: str, where: str = "--cluster") -> ClusterState:
    """The state folder of cluster `name`, once the name is known to be a cluster name (so never a path)."""
    if not is_cluster_name(name):
        raise UserInputError(f"{where} {shown_name(name)}: not a cluster name; {NAME_RULE}")
    return ClusterState(name)


class ClusterState:
    """The state folder of one cluster."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        self.name = name
        self.path = (root or state_root()) / name

    # --- layout -----------------------------------------------------------------------------------------
    @property
    def spec_file(self) -> Path:
        return self.path / "spec.yaml"

    @property
    def secrets_file(self) -> Path:
        return self.path / "secrets.yaml"

    @property
    def ssh_dir(self) -> Path:
        return self.path / "ssh"

    @property
    def ssh_private_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def ssh_public_key(self) -> Path:
        return self.ssh_dir / "id_ed25519.pub"

    @property
    def known_hosts_file(self) -> Path:
        """The nodes' host keys as oscar-deploy pinned them (cloud targets only: `providers/cloud.py`)."""
        return self.ssh_dir / "known_hosts"

    @property
    def inventory_file(self) -> Path:
        return self.path / "inventory.yml"

    @property
    def kubeconfig_file(self) -> Path:
        return self.path / "kubeconfig"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def pulumi_dir(self) -> Path:
        return self.path / "pulumi"

    @property
    def lock_file(self) -> Path:
        return self.path / "lock"

    @property
    def runs_dir(self) -> Path:
        """Private folders of running playbooks (`run_playbook`'s `private_root`)."""
        return self.path / "run"

    @property
    def journal(self) -> Journal:
        return Journal(self.path / "journal.json")

    @property
    def desired(self) -> DesiredState:
        return DesiredState(self.path / "desired.json")

    # --- lifecycle --------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.is_dir()

    def ensure(self) -> ClusterState:
        """Create the folder (0700, and so any missing parent) if needed and tighten its mode if someone
        loosened it."""
        make_private_dirs(self.path)
        self.path.chmod(0o700)
        return self

    def require(self) -> ClusterState:
        if not self.exists():
            raise UserInputError(f"cluster {self.name!r}: no state folder at {self.path}; run `oscar-deploy up` first")
        return self

    @contextmanager
    def operation(self, command: str, warn: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the cluster's lock while `command` runs (a second operation is refused naming this one); once
        held, whatever a crashed earlier run left in `run/` is stopped and removed."""
        with hold(self.lock_file, self.name, command, warn):
            self.ensure()
            self.clear_runs()
            yield

    def clear_runs(self) -> list[str]:
        """Stop the processes of, and remove, every run folder left by a crashed run; returns their names.
        Only safe while holding the lock: then no run of this cluster is alive to own them."""
        if not self.runs_dir.is_dir():
            return []
        removed = []
        for folder in sorted(self.runs_dir.iterdir()):
            if folder.is_dir() and not folder.is_symlink():
                if not stop_leftover(folder / GUARD_PID_FILE):
                    raise OperationError(
                        f"{folder}: the processes of a crashed run do not stop; end them (see {GUARD_PID_FILE} "
                        "there) and run this again"
                    )
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folder.unlink(missing_ok=True)
            removed.append(folder.name)
        return removed

    def destroy(self) -> None:
        """Remove the whole folder: secrets, keys, inventory, kubeconfig, logs. It is renamed out of the way first
        (one atomic step), so a removal stopped half-way leaves no half cluster under the cluster's name; what it
        left is removed by the next `destroy` in the same root."""
        doomed = self.path.with_name(f".{self.path.name}{REMOVED_MARK}{secrets.token_hex(4)}")
        with suppress(FileNotFoundError):
            self.path.rename(doomed)
        for folder in sorted(self.path.parent.glob(f".*{REMOVED_MARK}*")):
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)

    def write_file(self, path: Path, content: str, mode: int = 0o600) -> None:
        self.ensure()
        if path.parent != self.path:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, content, mode)

    def log_file(self, kind: str) -> Path:
        """A new log file for one run of `kind` (e.g. `ansible-site`), named by time so runs never clash."""
        self.ensure()
        self.logs_dir.mkdir(exist_ok=True, mode=0o700)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return self.logs_dir / f"{stamp}-{kind}.log"

    # --- spec -------------------------------------------------------------------------------------------
    def save_spec(self, spec_text: str) -> None:
        self.write_file(self.spec_file, spec_text)

    # --- secrets ----------------------------------------------------------------------------------------
    def _load_secrets(self) -> dict[str, str]:
        if not self.secrets_file.is_file():
            return {}
        data = yaml.safe_load(self.secrets_file.read_text()) or {}
        if not isinstance(data, dict):
            raise OperationError(f"{self.secrets_file}: expected a mapping of secret names to values")
        return {str(key): str(value) for key, value in data.items()}

    def secret(self, key: str, length: int = DEFAULT_SECRET_LENGTH) -> str:
        """The secret named `key`, generated (strong, random) and stored 0600 the first time it is asked for."""
        stored = self._load_secrets()
        if key not in stored:
            stored[key] = generate_secret(length)
            self.write_file(self.secrets_file, yaml.safe_dump(stored, sort_keys=True))
        return stored[key]

    def secret_names(self) -> list[str]:
        return sorted(self._load_secrets())

    # --- SSH key pair -----------------------------------------------------------------------------------
    def ensure_ssh_keypair(self) -> Path:
        """Create the cluster's ed25519 key pair once; returns the private key path."""
        if self.ssh_private_key.is_file() and self.ssh_public_key.is_file():
            return self.ssh_private_key
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode()
        public = (
            key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        )
        self.write_file(self.ssh_private_key, private, 0o600)
        self.write_file(self.ssh_public_key, f"{public} oscar-deploy-{self.name}\n", 0o644)
        return self.ssh_private_key

    def remove_key_material(self) -> None:
        """Delete the SSH key pair and the secrets: what `down` must not leave behind."""
        shutil.rmtree(self.ssh_dir, ignore_errors=True)
        self.secrets_file.unlink(missing_ok=True)
