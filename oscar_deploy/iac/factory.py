"""The stack runner of one cluster: the seam every phase and command goes through, and tests replace.

`create_runner` is called through this module (`factory.create_runner(...)`), so tests/doubles/stack_runner.py
can swap it for a recording runner.
"""

from __future__ import annotations

from collections.abc import Callable

from oscar_deploy.iac.backend import backend_url, passphrase_file, projects_dir, pulumi_environment
from oscar_deploy.iac.runner import StackRunner
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.download import DownloadReporter


def create_runner(
    state: ClusterState,
    backend: str | None = None,
    reporter: DownloadReporter | None = None,
    log: Callable[[str], None] = lambda _line: None,
) -> StackRunner:
    """The runner for one cluster: the Pulumi CLI found or installed, the backend, the passphrase file.

    Tests replace this function (tests/doubles/stack_runner.py); call it through the module.
    """
    # Pulumi's SDK takes most of a second to import: only commands that run a stack pay for it.
    from oscar_deploy.iac.pulumi_cli import ensure_pulumi
    from oscar_deploy.iac.pulumi_runner import PulumiCli, PulumiRunner

    binary = ensure_pulumi(reporter, log)
    env = pulumi_environment(backend_url(state, backend), passphrase_file(state))
    return PulumiRunner(PulumiCli(binary), env, projects_dir(state))
