"""FDL files are Jinja2 templates: values come from `-f values.yaml` files and `--set key=value` flags.

Undefined variables are errors (StrictUndefined) naming the variable and the template line, so a missing value
never renders as an empty string. Later sources win: values files in the order given, then `--set` flags.
`--set a.b=c` sets a nested value; `true`/`false` and plain decimal numbers become booleans and numbers, anything
else stays a string. Credentials belong in a values file or the environment, never on a command line: the
template function `env("NAME")` reads an environment variable (an error when it is not set).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from oscar_deploy.services.fdl import FdlDocument, FdlError, parse_fdl

INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")
FLOAT = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+$")
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _typed(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if INTEGER.match(text):
        return int(text)
    if FLOAT.match(text):
        return float(text)
    return text


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_values(values_files: list[Path], assignments: list[str]) -> dict[str, Any]:
    """The template context: each values file merged in order, then each `key=value` assignment."""
    values: dict[str, Any] = {}
    for path in values_files:
        if not path.is_file():
            raise FdlError([f"{path}: no such values file; pass an existing YAML file with -f"])
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise FdlError([f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}); fix that line"]) from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise FdlError([f"{path}: a values file must be a YAML mapping of names to values"])
        values = _merge(values, data)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not KEY.match(key):
            raise FdlError([f"--set {assignment}: write NAME=VALUE (NAME may be dotted, e.g. minio.bucket=images)"])
        nested: dict[str, Any] = {}
        cursor = nested
        *parents, leaf = key.split(".")
        for parent in parents:
            cursor = cursor.setdefault(parent, {})
        cursor[leaf] = _typed(text)
        values = _merge(values, nested)
    return values


def _template_line(traceback: TracebackType | None, template_name: str) -> int | None:
    """Jinja2 rewrites tracebacks so a frame points at the template's own line; find the last such frame."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == template_name:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _environment_variable(name: str, default: str | None = None) -> str:
    import jinja2

    value = os.environ.get(name, default)
    if value is None:
        raise jinja2.UndefinedError(f"environment variable {name!r} is not set")
    return value


def render_template(text: str, source: str, values: dict[str, Any]) -> str:
    """Render FDL template text; a missing value or a template error is an FdlError naming file and line."""
    import jinja2

    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - the output is YAML, not HTML
    )
    environment.globals["env"] = _environment_variable
    try:
        template = environment.from_string(text)
        template.name = template.filename = source
        return template.render(values)
    except jinja2.TemplateSyntaxError as exc:
        raise FdlError([f"{source}:{exc.lineno}: template syntax error: {exc.message}"]) from None
    except jinja2.UndefinedError as exc:
        line = _template_line(exc.__traceback__, source)
        where = f"{source}:{line}" if line else source
        fix = (
            "export it before running the command"
            if (exc.message or "").startswith("environment variable")
            else "give it with --set NAME=VALUE or in a values file (-f values.yaml)"
        )
        raise FdlError([f"{where}: {exc.message}; {fix}"]) from None


def load_fdl(path: Path, values_files: list[Path] | None = None, assignments: list[str] | None = None) -> FdlDocument:
    """Render the FDL template at `path` with the given values and validate the result."""
    if not path.is_file():
        raise FdlError([f"{path}: no such FDL file; see templates/services/ for examples"])
    values = load_values(values_files or [], assignments or [])
    rendered = render_template(path.read_text(), str(path), values)
    return parse_fdl(rendered, str(path), path.resolve().parent)
