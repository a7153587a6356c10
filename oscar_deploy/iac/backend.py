"""Where Pulumi keeps a cluster's state, and the passphrase that encrypts the secrets in it.

By default the state is a Pulumi file ("DIY") backend inside the cluster's state folder
(`file://<state>/pulumi`, checkpoints under `.pulumi/stacks/<project>/<stack>.json`, locks under
`.pulumi/locks/organization/<project>/<stack>/`): no account, and `down` removes it with the folder. A team may
set `iac.backend` to an s3:// URL (validated in the spec: no credentials in it); Pulumi then reads the AWS
credentials from the environment as usual.

Secrets in the state and in stack config are encrypted with Pulumi's passphrase provider. The passphrase is
generated once per cluster (`ClusterState.secret`) and handed to Pulumi as a 0600 file through
PULUMI_CONFIG_PASSPHRASE_FILE: never on a command line, never as the value of an environment variable. Pulumi
reads PULUMI_CONFIG_PASSPHRASE before the file variable (pkg/secrets/passphrase/manager.go, readPassphrase), so
the runner removes a PULUMI_CONFIG_PASSPHRASE inherited from the user's shell.
"""

from __future__ import annotations

import sys
from pathlib import Path

from oscar_deploy.state.folder import ClusterState

# The secret's name in secrets.yaml and the file Pulumi reads it from: names, not values.
PASSPHRASE_SECRET = "pulumi_passphrase"  # noqa: S105
PASSPHRASE_FILE = "passphrase"  # noqa: S105
PROJECTS_DIR = "projects"


def backend_url(state: ClusterState, configured: str | None = None) -> str:
    """The spec's backend when it names one, else the file backend in the cluster's state folder."""
    if configured:
        return configured
    state.ensure()
    state.pulumi_dir.mkdir(mode=0o700, exist_ok=True)
    return f"file://{state.pulumi_dir.resolve()}"


def passphrase_file(state: ClusterState) -> Path:
    """The cluster's Pulumi passphrase (generated the first time) in a 0600 file of its own, for Pulumi to read."""
    passphrase = state.secret(PASSPHRASE_SECRET)
    path = state.pulumi_dir / PASSPHRASE_FILE
    state.write_file(path, passphrase + "\n", 0o600)
    return path


def projects_dir(state: ClusterState) -> Path:
    """One working folder per Pulumi project of this cluster (its Pulumi.yaml and Pulumi.<stack>.yaml)."""
    return state.pulumi_dir / PROJECTS_DIR


def pulumi_environment(url: str, passphrase: Path) -> dict[str, str]:
    """What every Pulumi command of this cluster runs with, on top of the user's own environment.

    PULUMI_PYTHON_CMD makes the Python language host run project programs with this interpreter, which has
    oscar-deploy and the provider SDKs, whether or not its virtual environment is on PATH.
    """
    return {
        "PULUMI_BACKEND_URL": url,
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_PYTHON_CMD": sys.executable,
    }
