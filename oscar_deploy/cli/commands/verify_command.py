"""`oscar-deploy verify`: the post-deploy smoke test, also the last phase of `up`."""

from __future__ import annotations

import typer

from oscar_deploy.cli.access import (
    AccessOptions,
    cluster_access,
)
from oscar_deploy.services.verify import StepResult, format_result, verify_cluster
from oscar_deploy.support.errors import OperationError

IMAGE_OPTION = typer.Option(
    None, "--image", help="Image of the smoke-test service (default: the catalogue's smoke_test_image)."
)
VERIFY_TIMEOUT_OPTION = typer.Option(
    300.0, "--timeout", min=1.0, help="Seconds to wait for the job's output file and for the synchronous answer."
)


@cluster_access
def verify(
    image: str | None = IMAGE_OPTION,
    timeout: float = VERIFY_TIMEOUT_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """Smoke-test a running cluster: health, info, a service's async and sync paths, job log, clean-up."""
    access = reach.resolve()

    def report(result: StepResult) -> None:
        for line in format_result(result):
            typer.echo(line)

    typer.echo(f"verify {access.oscar.url}")
    outcome = verify_cluster(access, report, image=image, timeout=timeout)
    failure = outcome.first_failure
    if failure is not None:
        raise OperationError(f"verify: failed at step {failure.step!r}; see `look at` above")
    typer.echo(f"verify: all {len(outcome.results)} steps passed")
