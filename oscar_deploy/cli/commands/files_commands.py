"""`oscar-deploy files put|get|ls`: files in the cluster's MinIO buckets (S3 API, the cluster's credentials)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import typer

from oscar_deploy.cli.access import (
    AccessOptions,
    cluster_access,
    connect,
)
from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import JSON_OPTION, confirm_replace, print_json
from oscar_deploy.cli.several import failures_and_summary, try_each
from oscar_deploy.services.files import object_store_for, split_location, upload_key
from oscar_deploy.support.errors import UserInputError, printable
from oscar_deploy.support.files import check_data_target, check_regular_file, write_user_file

files_app = typer.Typer(
    help="Files in the cluster's MinIO buckets (BUCKET/PATH, as in FDL paths).", no_args_is_help=True
)

SOURCES_ARGUMENT = typer.Argument(..., help="Local file(s), then the destination BUCKET/PATH (or BUCKET/FOLDER/).")
REMOTE_ARGUMENT = typer.Argument(..., help="BUCKET/PATH of the file.")
LOCAL_ARGUMENT = typer.Argument(None, help="Local file, or - for standard output (default: the file's name here).")
FORCE_OPTION = typer.Option(False, "--force", help="Replace the local file if it exists (else refused, or asked).")
AGAIN_OPTION = typer.Option(
    False,
    "--again",
    help="Upload a file even when the object there holds the same content (on a service's input path: run its job "
    "again); without it such a file is skipped.",
)
LOCATION_ARGUMENT = typer.Argument(None, help="BUCKET or BUCKET/PREFIX; without it, the buckets are listed.")


@files_app.command("put")
@cluster_access
def put(
    paths: list[str] = SOURCES_ARGUMENT,
    again: bool = AGAIN_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """Upload files: `files put a.jpg b.jpg images/input/` (a service's input path starts a job per file).

    Safe to run again: a file whose content the object there holds already (same size and MD5) is skipped, so its
    job does not run twice; --again uploads it all the same. A file that fails does not keep the others from being
    uploaded; rejected credentials, a missing bucket or an unreachable MinIO stop it at once.
    """
    if len(paths) < 2:
        raise UserInputError("files put: give the local file(s) and then the destination BUCKET/PATH")
    *sources, destination = paths
    locals_ = list(dict.fromkeys(Path(source) for source in sources))  # a file named twice is uploaded once
    for local in locals_:
        # Data may be large (no size cap), but a FIFO or a device would never end.
        check_regular_file(local, "file to upload")
    bucket, key = split_location(destination)
    access = reach.resolve()
    uploaded: list[Path] = []
    skipped: list[Path] = []

    def upload(local: Path) -> None:
        target = upload_key(key, local, several=len(locals_) > 1)
        if not again and store.holds(local, bucket, target):
            skipped.append(local)
            typer.echo(f"{local}: already in {bucket}/{target} (same content), skipped")
            return
        store.put_file(local, bucket, target)
        uploaded.append(local)
        typer.echo(f"{local} -> {bucket}/{target}")

    with connect(access) as client:
        store = object_store_for(access, client)
        failed, untried = try_each(locals_, upload)
    if not failed:
        return
    if len(locals_) == 1:
        raise next(iter(failed.values()))
    counts = [
        f"{len(uploaded)} uploaded",
        f"{len(skipped)} skipped as same content",
        f"{len(failed)} failed",
        f"{len(untried)} not tried",
    ]
    rerun = "once fixed, `files put` again" + (" without --again" if again else "") + " uploads only what is not there"
    raise failures_and_summary({str(local): exc for local, exc in failed.items()}, [", ".join(counts), rerun])


@files_app.command("get")
@changes_nothing
@cluster_access
def get(
    remote: str = REMOTE_ARGUMENT,
    local: str | None = LOCAL_ARGUMENT,
    force: bool = FORCE_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """Download one file: `files get images/output/a.jpg` (or `... -` to print it)."""
    bucket, key = split_location(remote)
    if not key or key.endswith("/"):
        raise UserInputError(f"{remote}: name a file (BUCKET/PATH); `oscar-deploy files ls {remote}` lists them")
    target = None
    replace = force
    if local != "-":
        target = Path(local) if local else Path(key.rsplit("/", 1)[-1])
        # os.path: False, not OSError, for a name too long to look up (check_write_target names that).
        if os.path.isdir(target):  # noqa: PTH112
            target = target / key.rsplit("/", 1)[-1]
        # Before the download. A file there is replaced only with --force or a yes on a terminal: the download may
        # be named like the cluster spec, a kubeconfig or anything else in this folder.
        replace = check_data_target(target, "local file", force, confirm_replace)
    access = reach.resolve()
    with connect(access) as client:
        data = object_store_for(access, client).get_bytes(bucket, key)
    if target is None:
        typer.echo(data, nl=False)
        return
    write_user_file(target, data, "local file", 0o644, replace_existing=replace)
    typer.echo(f"{bucket}/{key} -> {target} ({len(data)} bytes)", err=True)


@files_app.command("ls")
@changes_nothing
@cluster_access
def ls(
    location: str | None = LOCATION_ARGUMENT,
    as_json: bool = JSON_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """List buckets, or the files of a bucket or folder."""
    access = reach.resolve()
    with connect(access) as client:
        store = object_store_for(access, client)
        if location is None:
            buckets = store.list_buckets()
            if as_json:
                print_json(buckets)
            for bucket in [] if as_json else buckets:
                typer.echo(printable(bucket))
            return
        bucket, prefix = split_location(location)
        objects = store.list_objects(bucket, prefix)
    if as_json:
        print_json([asdict(item) for item in objects])
        return
    for item in objects:
        # Keys are whatever uploaders chose: escaped, a key cannot move the cursor or rewrite the terminal.
        typer.echo(printable(f"{item.size:>12}  {item.last_modified}  {bucket}/{item.key}"))
