"""Options shared by the commands that talk to a running cluster (`service`, `files`, `verify`), declared once:
`@cluster_access` gives a command --cluster, --endpoint, --user, --ca-file and --password-stdin, and hands them
to it as one `AccessOptions` (its parameter `reach`), resolved when the command is ready to connect.

A cluster oscar-deploy created is reached through the endpoints file its platform phase wrote
(`<state folder>/endpoints.yaml` and the state's secrets): the one named with --cluster, else
$OSCAR_DEPLOY_CLUSTER, the one ./cluster.yaml names, or the only cluster there is. Any other OSCAR cluster is
reached with --endpoint (or $OSCAR_ENDPOINT when no --cluster is given) and credentials from the environment (see
oscar_deploy/state/endpoints.py). Passwords are never option values.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer

from oscar_deploy.services.client import OscarClient
from oscar_deploy.state import endpoints
from oscar_deploy.state.endpoints import ClusterAccess
from oscar_deploy.state.folder import cluster_state
from oscar_deploy.support.errors import UserInputError

CLUSTER_OPTION = typer.Option(
    None,
    "--cluster",
    "-c",
    help="Cluster created by oscar-deploy (default: $OSCAR_DEPLOY_CLUSTER, ./cluster.yaml, or the only one).",
)
ENDPOINT_OPTION = typer.Option(
    None,
    "--endpoint",
    help="OSCAR API of a cluster oscar-deploy did not create (default: $OSCAR_ENDPOINT unless --cluster is given); "
    "password from $OSCAR_PASSWORD, --password-stdin or a prompt, or a bearer token from $OSCAR_TOKEN.",
)
USER_OPTION = typer.Option(None, "--user", help="Basic-auth user with --endpoint (default: $OSCAR_USER or oscar).")
CA_FILE_OPTION = typer.Option(
    None, "--ca-file", dir_okay=False, help="PEM CA bundle of a self-signed cluster, with --endpoint ($OSCAR_CA_FILE)."
)
PASSWORD_STDIN_OPTION = typer.Option(
    False, "--password-stdin", help="Read the --endpoint password from the first line of standard input."
)


Command = TypeVar("Command", bound=Callable[..., Any])


@dataclass(frozen=True)
class AccessOptions:
    """The access options a command was given; `resolve` turns them into OSCAR and MinIO access."""

    cluster: str | None = None
    endpoint: str | None = None
    user: str | None = None
    ca_file: Path | None = None
    password_stdin: bool = False

    def resolve(self, stdin_is_data: bool = False) -> ClusterAccess:
        """Resolve now (after the command checked its other input): `stdin_is_data` when standard input
        carries the command's data, so it cannot also carry a password."""
        return resolve_access(
            self.cluster, self.endpoint, self.user, self.ca_file, self.password_stdin, stdin_is_data=stdin_is_data
        )


# The options `cluster_access` adds, as typer reads them from a signature: name, type, declaration.
ACCESS_PARAMETERS = (
    ("cluster", str | None, CLUSTER_OPTION),
    ("endpoint", str | None, ENDPOINT_OPTION),
    ("user", str | None, USER_OPTION),
    ("ca_file", Path | None, CA_FILE_OPTION),
    ("password_stdin", bool, PASSWORD_STDIN_OPTION),
)


def cluster_access(command: Command) -> Command:
    """Give `command` the cluster-access options; it receives them as `reach: AccessOptions`."""
    signature = inspect.signature(command)
    kept = [parameter for name, parameter in signature.parameters.items() if name != "reach"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
        for name, annotation, option in ACCESS_PARAMETERS
    ]

    @functools.wraps(command)
    def with_access(*args: Any, **kwargs: Any) -> Any:
        options = AccessOptions(**{name: kwargs.pop(name) for name, _, _ in ACCESS_PARAMETERS})
        return command(*args, reach=options, **kwargs)

    annotations = {key: value for key, value in command.__annotations__.items() if key != "reach"}
    with_access.__annotations__ = {**annotations, **{name: annotation for name, annotation, _ in ACCESS_PARAMETERS}}
    with_access.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    return with_access  # type: ignore[return-value]


def resolve_access(
    cluster: str | None,
    endpoint: str | None,
    user: str | None,
    ca_file: Path | None,
    password_stdin: bool,
    stdin_is_data: bool = False,
) -> ClusterAccess:
    """The OSCAR and MinIO access the options and environment select."""
    if endpoint and cluster:
        raise UserInputError("--cluster and --endpoint: give one of them, not both")
    if not endpoint and not cluster:
        # $OSCAR_ENDPOINT stands for --endpoint, but an explicit --cluster wins over the environment.
        endpoint = os.environ.get(endpoints.ENDPOINT_ENV) or None
    if endpoint:
        token = os.environ.get(endpoints.TOKEN_ENV) or None
        password = None
        if token is None:
            if password_stdin:
                if stdin_is_data:
                    raise UserInputError("--password-stdin: standard input carries the data here; use --input FILE")
                password = sys.stdin.readline().rstrip("\r\n")
                if not password:
                    raise UserInputError("--password-stdin: standard input holds no password; pipe the password in")
            else:
                password = os.environ.get(endpoints.PASSWORD_ENV)
                if password is None and sys.stdin.isatty():
                    password = getpass.getpass(f"OSCAR password for {endpoint}: ")
        env_ca = os.environ.get(endpoints.CA_FILE_ENV)
        return endpoints.access_from_flags(
            endpoint,
            user or os.environ.get(endpoints.USER_ENV),
            password,
            token,
            ca_file or (Path(env_ca) if env_ca else None),
        )
    for given, flag in ((user, "--user"), (ca_file, "--ca-file"), (password_stdin, "--password-stdin")):
        if given:
            raise UserInputError(f"{flag}: only used with --endpoint; a cluster's own state holds its credentials")

    # cluster_state refuses a name that is not a cluster name (a path such as ../x never reaches the file system).
    named = cluster or endpoints.default_cluster_name(alternative="--endpoint URL for one oscar-deploy did not create")
    return endpoints.access_from_state(cluster_state(named))


def connect(access: ClusterAccess) -> OscarClient:
    return OscarClient(access.oscar)
