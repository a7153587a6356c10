"""`versions`: the pinned version catalogue, with a spec's overrides applied when one is given."""

from __future__ import annotations

from pathlib import Path

import typer

from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import JSON_OPTION, print_json, print_table
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.spec.models import load_spec

OVERRIDES_OPTION = typer.Option(None, "--file", "-f", help="Apply this spec's `versions:` overrides.", dir_okay=False)


@changes_nothing
def versions(file: Path | None = OVERRIDES_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Print every pinned external artefact and its source.

    k3s, Knative, MinIO, OSCAR and the rest, with where upstream publishes each.
    """
    catalogue = load_catalogue()
    if file is not None:
        catalogue = catalogue.with_overrides(load_spec(file).versions)
    if as_json:
        print_json({key: component.as_dict() for key, component in catalogue.components.items()})
        return
    rows = []
    for component in catalogue.components.values():
        version = component.image_reference or component.version
        if component.overridden:
            version += " (spec override)"
        if component.unpinned_files:
            version += f" [UNPINNED: {', '.join(component.unpinned_files)}]"
        rows.append((component.key, version, component.description))
    print_table(("component", "version", "what it is"), rows)
