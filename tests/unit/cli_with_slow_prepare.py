"""Runs `oscar-deploy` (argv as usual) with the node phases cut to provision and prepare, and prepare's playbook
taken from tests/unit/runner_playbooks/slow/ (a stand-in for playbooks/prepare.yml that can take its time), so
that a run can be interrupted or killed in the middle of a task against `connection: local` hosts without
touching this machine. Everything else is the real code: the CLI and its exit codes, the lock, the phases and
journal, ansible-runner and the guard.
"""

from __future__ import annotations

from pathlib import Path

from oscar_deploy.cli import app
from oscar_deploy.nodes import ansible
from oscar_deploy.pipeline import cluster
from oscar_deploy.pipeline.node_phases import NODE_PHASES

SLOW_PLAYBOOKS = Path(__file__).parent / "runner_playbooks" / "slow"

if __name__ == "__main__":
    ansible.layer_dir = lambda name: SLOW_PLAYBOOKS  # type: ignore[assignment]
    cluster.PHASES = NODE_PHASES[:2]
    app.main()
