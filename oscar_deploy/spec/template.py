"""Writes the commented spec `init` produces and the spec reference in the README, both from the models.

Generating both from `oscar_deploy.spec.models` keeps the comments, the JSON Schema and the docs in step with the
code: a field added there appears everywhere without another edit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel

from oscar_deploy.spec.models import SCHEMA_FILE_NAME, TARGET_SECTIONS, ClusterSpec
from oscar_deploy.spec.yamlcheck import model_class
from oscar_deploy.support.files import parse_json

HEADER = """\
# yaml-language-server: $schema=./{schema}
# oscar-deploy cluster spec. Every key is optional; the values shown are the defaults.
# Check it with `oscar-deploy validate -f {file}`; `oscar-deploy versions` lists the pinned versions.
"""


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    dumped = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def _emit(model: BaseModel, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if name in TARGET_SECTIONS and value is None:
            continue  # only the chosen target's section is written
        if indent == 0 and len(lines) > 1:
            lines.append("")
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if model_class(field.annotation) is not None and isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            _emit(value, indent + 2, lines)
        else:
            rendered = _scalar(value)
            lines.append(f"{pad}{name}: {rendered}".rstrip())


def render_spec(name: str, target: str, file_name: str, settings: Mapping[str, Any] | None = None) -> str:
    """A complete, commented spec for `target` with every default written out (`settings` replace some of the
    target section's defaults)."""
    data: dict[str, Any] = {"name": name, "target": target}
    if settings:
        data[target] = dict(settings)
    spec = ClusterSpec.model_validate(data)
    lines = [HEADER.format(schema=SCHEMA_FILE_NAME, file=file_name).rstrip()]
    _emit(spec, 0, lines)
    return "\n".join(lines) + "\n"


SCHEMA_TITLE = "oscar-deploy cluster spec"


def is_spec_text(text: str) -> bool:
    """Whether `text` is a cluster spec (valid or not) or empty: what `init --force` may replace without asking."""
    from oscar_deploy.spec.yamlcheck import load_yaml

    try:
        _, data = load_yaml(text)
    except yaml.YAMLError:
        return False
    return data is None or (isinstance(data, dict) and set(map(str, data)) <= set(ClusterSpec.model_fields))


def is_schema_text(text: str) -> bool:
    """Whether `text` is the spec schema `init` writes (any version of it)."""
    try:
        data = parse_json(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("title") == SCHEMA_TITLE


def settings_from_environment(target: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the user's shell already says about a cloud target: the clouds.yaml entry in OS_CLOUD; the AWS
    profile in AWS_PROFILE and the region in AWS_REGION (or AWS_DEFAULT_REGION)."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    if target == "openstack" and env.get("OS_CLOUD"):
        found["cloud"] = env["OS_CLOUD"]
    if target == "aws":
        if env.get("AWS_PROFILE"):
            found["profile"] = env["AWS_PROFILE"]
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            found["region"] = region
    return found


def json_schema() -> str:
    schema = ClusterSpec.model_json_schema()
    schema["title"] = SCHEMA_TITLE
    return json.dumps(schema, indent=2) + "\n"


def reference_markdown() -> str:
    """The README's spec reference table: key, default, meaning."""
    rows = ["| key | default | meaning |", "|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        instance = model()
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            nested = model_class(field.annotation)
            if nested is not None:
                if field.description:
                    rows.append(f"| `{key}` | | {field.description} |")
                walk(nested, f"{key}.")
                continue
            default = _scalar(getattr(instance, name)) or "(empty)"
            rows.append(f"| `{key}` | `{default}` | {field.description or ''} |")

    walk(ClusterSpec, "")
    return "\n".join(rows) + "\n"
