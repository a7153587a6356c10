"""FDL files are Jinja2 templates: values come from `-f values.yaml` files and `--set key=value` flags.

Undefined variables are errors (StrictUndefined) naming the variable and the template line, so a missing value
never renders as an empty string. Later sources win: values files in the order given, then `--set` flags.
`--set a.b=c` sets a nested value; `true`/`false` and plain decimal numbers become booleans and numbers, anything
else stays a string. Credentials belong in a values file or the environment, never on a command line: the
template function `env("NAME")` reads an environment variable (an error when it is not set), except the
command's own login to the cluster; a variable named like a credential has its value masked where the FDL is shown.

An FDL may come from anyone, so templates run in Jinja's sandbox (no attribute of Python's internals is
reachable), `{% include %}` and `{% import %}` read only files in the FDL's folder, and rendering has a budget
(time, output size, range sizes, string repetition and widening, and memory: the render runs in a child
process held to RENDER_MEMORY_BYTES). Every string a `{{ ... }}` prints (a value, an environment
variable) is inserted into the document as data, after the YAML is parsed: a password holding `#`, `!` or `*`
stays that password, a version `1.10` stays the text `1.10`, and a value never shows in a YAML error. Text the
template itself makes (a macro's output, `tojson`, `| safe`) is YAML text as written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from oscar_deploy.services.fdl import FdlDocument, FdlError, parse_fdl
from oscar_deploy.spec.yamlcheck import load_yaml, yaml_problem
from oscar_deploy.state.endpoints import MINIO_SECRET_KEY_ENV, PASSWORD_ENV, TOKEN_ENV
from oscar_deploy.support.errors import UserInputError, shown
from oscar_deploy.support.files import MAX_DOCUMENT_BYTES, inside_folder, read_user_text, shown_path

INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
RENDER_SECONDS = 10
# The memory a render may take beyond what the command already holds, and the time its process gets beyond
# RENDER_SECONDS to stop by itself before it is killed.
RENDER_MEMORY_BYTES = 128 * 2**20
CHILD_GRACE_SECONDS = 5
# The command's own credentials for the cluster it talks to: a template (which may come from anyone) never
# reads them, or a service could carry the cluster's admin login away.
WITHHELD_ENV = frozenset({PASSWORD_ENV, TOKEN_ENV, MINIO_SECRET_KEY_ENV})
# An environment variable whose name says it holds a credential (AWS_SECRET_ACCESS_KEY, DB_PASSWORD, API_TOKEN).
CREDENTIAL_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
MAX_OUTPUT_CHARS = MAX_DOCUMENT_BYTES
# How deeply printed values may hold other printed values (a macro's output formatted into a string, printed by
# another macro, and so on): each level is one step of putting the values back.
MAX_VALUE_NESTING = 8
# The largest integer `**` may produce, in bits (a 10**10**10 would take the machine's memory).
MAX_POWER_BITS = 4096
# A printf-style field of `%`: mapping key, flags, width, precision (either may be `*`), length modifier, type.
PRINTF_FIELD = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-+ #0]*(?P<width>\*|[0-9]*)(?:\.(?P<precision>\*|[0-9]*))?[hlL]?(?P<kind>.?)", re.DOTALL
)


def _typed(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if INTEGER.fullmatch(text):
        return int(text)
    if FLOAT.fullmatch(text):
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


def _values_file(path: Path) -> dict[str, Any]:
    import yaml

    source = shown_path(path)
    try:
        text = read_user_text(path, "values file", missing="pass an existing YAML file with -f")
    except UserInputError as exc:
        raise FdlError([str(exc)]) from None
    try:
        _, data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise FdlError([yaml_problem(exc, source)]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FdlError([f"{source}: a values file must be a YAML mapping of names to values"])
    return data


def load_values(values_files: list[Path], assignments: list[str]) -> dict[str, Any]:
    """The template context: each values file merged in order, then each `key=value` assignment."""
    values: dict[str, Any] = {}
    for path in values_files:
        values = _merge(values, _values_file(path))
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not KEY.fullmatch(key):
            # The value is never shown: it may be a secret given in the wrong place.
            given = shown_path(key[:60]) + ("=..." if sep else "")
            raise FdlError([f"--set {given}: write NAME=VALUE (NAME may be dotted, e.g. minio.bucket=images)"])
        nested: dict[str, Any] = {}
        cursor = nested
        *parents, leaf = key.split(".")
        for parent in parents:
            cursor = cursor.setdefault(parent, {})
        cursor[leaf] = _typed(text)
        values = _merge(values, nested)
    return values


# --- inserting values as data -----------------------------------------------------------------------------------


@dataclass
class Insertions:
    """The strings `{{ ... }}` printed, each replaced in the text by a marker and put back after YAML parsing."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    values: list[str] = field(default_factory=list)
    # Values read from the environment: never shown in a message.
    hidden: list[str] = field(default_factory=list)
    # Those of them read from a variable named like a credential: also masked where the FDL is shown.
    credentials: list[str] = field(default_factory=list)

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(f"odv{self.nonce}n([0-9]+)z")

    def marker(self, value: str) -> str:
        self.values.append(value)
        return f"odv{self.nonce}n{len(self.values) - 1}z"

    def expansion(self, text: str) -> tuple[int, int]:
        """How long `text` becomes once its values are put back (capped just past MAX_OUTPUT_CHARS), and how
        deeply they nest, counted without making it. A value holds markers when the template prints a macro's
        output formatted into a string; only the markers of values made before it count (a template can read a
        marker and forge others, but never for a value that does not exist yet)."""
        sizes: list[int] = []
        depths: list[int] = []
        for value in (*self.values, text):
            size, depth = len(value), 0
            for match in self.pattern.finditer(value):
                index = int(match.group(1))
                if index < len(sizes):
                    size += sizes[index] - len(match[0])
                    depth = max(depth, depths[index] + 1)
            sizes.append(min(size, MAX_OUTPUT_CHARS + 1))
            depths.append(depth)
        return sizes[-1], depths[-1]

    def _text(self, text: str, before: int) -> str:
        """`text` with each marker of a value made before value number `before` replaced by that value."""
        if self.nonce not in text:
            return text

        def value(match: re.Match[str]) -> str:
            index = int(match.group(1))
            return self._text(self.values[index], index) if index < before else match[0]

        return self.pattern.sub(value, text)

    def put_back(self, data: Any) -> Any:
        """`data` with every marker replaced by its value (in place; each container once, whatever the aliases)."""
        if not self.values:
            return data
        done: set[int] = set()

        def visit(item: Any) -> Any:
            if isinstance(item, str):
                return self._text(item, len(self.values))
            if id(item) in done:
                return item
            done.add(id(item))
            if isinstance(item, dict):
                pairs = [(visit(key), visit(value)) for key, value in item.items()]
                item.clear()
                item.update(pairs)
            elif isinstance(item, list):
                item[:] = [visit(value) for value in item]
            return item

        return visit(data)

    def scrub(self, line: str) -> str:
        """`line` with every environment value blanked out, should a message have caught one."""
        for value in sorted(self.hidden, key=len, reverse=True):
            # Whole, and as messages cut long values short (see support.errors.shown).
            for part in (value, value[:200], value[:80], value[:40]):
                if len(part) >= 3:
                    line = line.replace(part, "****")
        return line


# --- the sandbox ------------------------------------------------------------------------------------------------


class _TooSlow(Exception):
    """Raised in the rendering thread when the time budget is spent."""


@contextmanager
def _time_budget(seconds: int) -> Iterator[None]:
    """Stop a render that runs longer than `seconds` (a loop nested over large ranges), where signals can."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _power_too_large(base: Any, exponent: Any) -> bool:
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0 or abs(base) <= 1:
        return False
    return exponent * abs(base).bit_length() > MAX_POWER_BITS


def _repetition_too_large(left: Any, right: Any) -> bool:
    sized, count = (left, right) if isinstance(right, int) else (right, left)
    return isinstance(sized, str | list | tuple) and isinstance(count, int) and len(sized) * count > MAX_OUTPUT_CHARS


# --- widening strings -------------------------------------------------------------------------------------------
# Padding, `%` and `.format` widths, tab expansion, indentation and replacement make a long string in one C call,
# which neither the time budget (a signal waits for the call to end) nor the output budget (it counts what is
# printed) can stop: each is refused beforehand when its result could be longer than MAX_OUTPUT_CHARS.


def _len(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _number(value: Any) -> int:
    return abs(value) if isinstance(value, int) else 0  # a negative `*` width pads to the left


def _printf_size(template: str, values: Any) -> int:
    """About the length of `template % values`: its text, and for each field the widest of its width, precision
    and the string it prints (a `*` takes its number from the values, as `%` does)."""
    queue = list(values) if isinstance(values, tuple) else [values]

    def number(given: str | None) -> int:
        if given == "*":
            return _number(queue.pop(0)) if queue else 0
        return int(given or 0)

    size = len(template)
    for field_ in PRINTF_FIELD.finditer(template):
        size -= len(field_[0])
        if field_["kind"] == "%":
            size += 1
            continue
        width, precision = number(field_["width"]), number(field_["precision"])
        if field_["key"] is not None:
            if "(" in field_["key"]:  # `%` balances parentheses in a key: `%(a(b))600000000s` is a width
                raise _refused("a %(key) holding parentheses")
            value = values.get(field_["key"]) if isinstance(values, Mapping) else None
        else:
            value = queue.pop(0) if queue else None
        size += max(width, precision, _len(value))
    return size


def _replaced_size(text: Any, old: Any, new: Any, count: Any) -> int:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    found = text.count(old) if old else len(text) + 1  # an empty `old` matches around every character
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _wrapped_size(text: Any, width: Any, wrapstring: Any) -> int:
    if not isinstance(text, str):
        return 0
    # Each paragraph (a line, as splitlines sees it) is wrapped greedily: two neighbouring lines of it span at least
    # `width` characters of the text together, so at most 2 * len / width + 1 lines.
    breaks = len(text.splitlines()) + 2 * len(text) // max(_number(width), 1)
    return len(text) + breaks * (_len(wrapstring) if wrapstring is not None else 1)


def _indented_size(text: Any, width: Any) -> int:
    if not isinstance(text, str):
        return 0
    # `indent` indents each line as splitlines sees it (\r, \f and others end a line too).
    return len(text) + len((text + "\n").splitlines()) * (_number(width) or _len(width))


# How long the result of a str method or a filter may be, from its arguments (as named in its signature).
Size = Callable[[dict[str, Any]], int]


def _padded_size(given: dict[str, Any]) -> int:
    return max(_len(given["self"]), _number(given["width"]))


STR_METHOD_SIZES: dict[str, Size] = {
    "center": _padded_size,
    "ljust": _padded_size,
    "rjust": _padded_size,
    "zfill": _padded_size,
    "expandtabs": lambda given: len(given["self"]) + given["self"].count("\t") * _number(given["tabsize"]),
    "replace": lambda given: _replaced_size(given["self"], given["old"], given["new"], given["count"]),
}
FILTER_SIZES: dict[str, Size] = {
    "center": lambda given: max(_len(given["value"]), _number(given["width"])),
    "indent": lambda given: _indented_size(given["s"], given["width"]),
    "wordwrap": lambda given: _wrapped_size(given["s"], given["width"], given["wrapstring"]),
    "format": lambda given: _printf_size(str(given["value"]), given["kwargs"] or given["args"]),
    "replace": lambda given: _replaced_size(given["s"], given["old"], given["new"], given["count"]),
}


def _refused(what: str) -> Exception:
    from jinja2.exceptions import SecurityError

    return SecurityError(what)


def _too_long(what: str) -> Exception:
    return _refused(f"{what} would make a text of more than {MAX_OUTPUT_CHARS} characters")


def _check_size(what: str, size: Size, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Refuse a call of `function` whose result `size` says could be longer than MAX_OUTPUT_CHARS."""
    try:
        given = inspect.signature(function).bind(*args, **kwargs)
    except TypeError:
        return  # the call itself says what is wrong with its arguments
    given.apply_defaults()
    if size(given.arguments) > MAX_OUTPUT_CHARS:
        raise _too_long(what)


def _sized_filter(name: str, size: Size, function: Callable[..., Any]) -> Callable[..., Any]:
    # Jinja calls filters directly, not through the sandbox's `call`: the filter itself checks.
    @functools.wraps(function)  # keeps Jinja's pass_environment / pass_eval_context marks
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_size(f"the {name} filter", size, function, *args, **kwargs)
        return function(*args, **kwargs)

    return checked


def _environment(folder: Path, insertions: Insertions, loaded: set[str]) -> Any:
    import jinja2
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment, SandboxedFormatter
    from markupsafe import Markup

    class FolderLoader(jinja2.BaseLoader):
        """Templates by path relative to the FDL's folder; nothing outside it (no `..`, no absolute path, no link
        leading out)."""

        def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
            path = inside_folder(folder, template)
            if path is None:
                raise jinja2.TemplateNotFound(
                    template,
                    f"{shown(template)} is outside the FDL's folder {shown_path(folder)}; only files in that "
                    "folder can be included",
                )
            text = read_user_text(path, "included template")
            loaded.add(str(path))
            return text, str(path), lambda: True

    class MeasuringFormatter(SandboxedFormatter):
        """Formats field by field, each width checked before the field is made and the total as it grows; nested
        fields (`{:{}}`) are resolved by the time a field's format spec gets here."""

        size = 0
        what = "str.format"

        def format_field(self, value: Any, format_spec: str) -> Any:
            if max(map(int, re.findall("[0-9]+", format_spec)), default=0) > MAX_OUTPUT_CHARS:
                raise _too_long(self.what)
            text = super().format_field(value, format_spec)
            self.size += len(text)
            if self.size > MAX_OUTPUT_CHARS:
                raise _too_long(self.what)
            return text

    class BudgetedSandbox(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and _power_too_large(left, right):
                raise SecurityError(f"the result of ** would have more than {MAX_POWER_BITS} bits")
            if operator == "*" and _repetition_too_large(left, right):
                raise SecurityError(f"repeating a value makes more than {MAX_OUTPUT_CHARS} items")
            if operator == "%" and isinstance(left, str) and _printf_size(left, right) > MAX_OUTPUT_CHARS:
                raise _too_long("%")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            # The parameters keep Jinja's double underscores, so no keyword argument of the call can clash.
            owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", None)
            if isinstance(owner, str) and name in STR_METHOD_SIZES:
                # Checked against str's own signature: Markup's methods take *args.
                _check_size(f"str.{name}", STR_METHOD_SIZES[name], getattr(str, name), owner, *args, **kwargs)
            return super().call(__context, __obj, *args, **kwargs)

        def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
            # Jinja wraps str.format and format_map when they are looked up (not when called): a dry run first.
            formatted = super().wrap_str_format(value)
            if formatted is None:
                return None

            def checked(*args: Any, **kwargs: Any) -> str:
                mapping = value.__name__ == "format_map" and len(args) == 1 and not kwargs
                measuring = MeasuringFormatter(self)
                measuring.what = f"str.{value.__name__}"
                measuring.vformat(value.__self__, () if mapping else args, args[0] if mapping else kwargs)
                return formatted(*args, **kwargs)

            return functools.update_wrapper(checked, value)

    def finalize(value: Any) -> Any:
        if isinstance(value, jinja2.Undefined):
            return value  # StrictUndefined raises when printed
        if isinstance(value, Markup):
            return value  # text the template made (a macro, tojson, | safe): YAML as written
        if isinstance(value, str):
            # A marker is letters and digits only, and the output is YAML, not HTML: nothing to escape.
            return Markup(insertions.marker(value))  # noqa: S704
        return Markup(str(value))  # noqa: S704 - a number, boolean or collection as Jinja prints it

    def env(name: str, default: str | None = None) -> str:
        if name in WITHHELD_ENV:
            raise SecurityError(
                f"env({name!r}) is oscar-deploy's own login to the cluster, not the template's; "
                "give the value in a values file (-f values.yaml) if the service really needs it"
            )
        value = os.environ.get(name, default)
        if value is None:
            raise jinja2.UndefinedError(f"environment variable {name!r} is not set")
        insertions.hidden.append(value)
        if CREDENTIAL_NAME.search(name):
            insertions.credentials.append(value)
        return value

    environment = BudgetedSandbox(
        loader=FolderLoader(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=True,  # with `finalize`: what `{{ }}` prints is a marker, not escaped HTML
        finalize=finalize,
    )
    env.__qualname__ = env.__name__  # messages say env(), not the closure's full name
    for name, size in FILTER_SIZES.items():
        environment.filters[name] = _sized_filter(name, size, environment.filters[name])
    environment.globals["env"] = env
    return environment


def _template_line(traceback: TracebackType | None, files: set[str]) -> tuple[str, int] | None:
    """Jinja2 rewrites tracebacks so a frame points at a template's own line; the innermost such frame."""
    found = None
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename in files:
            found = (filename, traceback.tb_lineno)
        traceback = traceback.tb_next
    return found


def render_template(
    text: str, source: str, values: dict[str, Any], folder: Path | None = None
) -> tuple[str, Insertions]:
    """Render FDL template text in the sandbox; a template error is an FdlError naming file and line.

    Returns the YAML text, holding a marker where `{{ ... }}` printed a string, and the insertions that put the
    strings back into the parsed data. Where the system can fork, the rendering runs in a child process held to
    RENDER_MEMORY_BYTES more memory and stopped after RENDER_SECONDS: the guards above refuse what they can
    foresee with a precise message, and the kernel stops the rest (a join of many large strings, a large list
    printed as text, a string doubled with `~` over and over).
    """
    if not hasattr(os, "fork"):
        return _render(text, source, values, folder)
    return _render_in_child(text, source, values, folder)


def too_much_memory(source: str) -> str:
    return f"{source}: the template needs too much memory; simplify it"


def _render_in_child(text: str, source: str, values: dict[str, Any], folder: Path | None) -> tuple[str, Insertions]:
    import json
    import resource
    import select

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, send the outcome as JSON, and leave without running the parent's exit code
        status = 1
        try:
            os.close(read_end)
            size = _address_space_size()
            if size is not None:
                limit = size + RENDER_MEMORY_BYTES
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                rendered, insertions = _render(text, source, values, folder)
                outcome: dict[str, Any] = {"text": rendered, "insertions": dataclasses.asdict(insertions)}
            except FdlError as exc:
                outcome = {"refused": exc.lines}
            with os.fdopen(write_end, "w", encoding="utf-8") as pipe:
                json.dump(outcome, pipe)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + RENDER_SECONDS + CHILD_GRACE_SECONDS
    try:
        with os.fdopen(read_end, "rb") as pipe:
            while (remaining := deadline - time.monotonic()) > 0 and select.select([pipe], [], [], remaining)[0]:
                chunk = os.read(pipe.fileno(), 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            else:  # the deadline passed: a loop the child's own timer could not interrupt
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise FdlError([f"{source}: the template ran longer than {RENDER_SECONDS} s; simplify it"])
    except BaseException:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    _pid, status = os.waitpid(pid, 0)
    if status != 0 or not chunks:
        raise FdlError([too_much_memory(source)])  # it died on the limit
    outcome = json.loads(b"".join(chunks))
    if "refused" in outcome:
        raise FdlError(outcome["refused"])
    return outcome["text"], Insertions(**outcome["insertions"])


def _address_space_size() -> int | None:
    """This process's virtual memory size in bytes (Linux: /proc/self/statm), or None where it cannot be read."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _render(text: str, source: str, values: dict[str, Any], folder: Path | None) -> tuple[str, Insertions]:
    """The rendering itself, in this process."""
    import jinja2
    from jinja2.exceptions import SecurityError

    insertions = Insertions()
    files = {source}
    environment = _environment(folder or Path.cwd(), insertions, files)

    def where(exc: BaseException) -> str:
        found = _template_line(exc.__traceback__, files)
        return f"{shown_path(found[0]) if found[0] != source else source}:{found[1]}" if found else source

    def fail(line: str) -> FdlError:
        return FdlError([insertions.scrub(line)])

    too_long = f"{source}: the template renders more than {MAX_OUTPUT_CHARS} characters; simplify it"
    try:
        with _time_budget(RENDER_SECONDS):
            template = environment.from_string(text)
            template.name = template.filename = source
            pieces: list[str] = []
            size = 0
            for piece in template.generate(values):
                size += len(piece)
                if size > MAX_OUTPUT_CHARS:
                    raise fail(too_long)
                pieces.append(piece)
            rendered = "".join(pieces)
            # The text is short, but the values put back into it may not be.
            size, depth = insertions.expansion(rendered)
        if size > MAX_OUTPUT_CHARS:
            raise fail(too_long)
        if depth > MAX_VALUE_NESTING:
            raise fail(
                f"{source}: the template prints values inside printed values more than {MAX_VALUE_NESTING} deep; "
                "simplify it"
            )
        return rendered, insertions
    except FdlError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        name = source if exc.filename in (None, source) else shown_path(exc.filename)
        raise fail(f"{name}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        fix = (
            "export it before running the command"
            if (exc.message or "").startswith("environment variable")
            else "give it with --set NAME=VALUE or in a values file (-f values.yaml)"
        )
        raise fail(f"{where(exc)}: {exc.message}; {fix}") from None
    except jinja2.TemplateNotFound as exc:
        raise fail(f"{where(exc)}: include: {exc.message}") from None
    except SecurityError as exc:
        raise fail(f"{where(exc)}: not allowed in a template: {exc}") from None
    except _TooSlow as exc:
        raise fail(
            f"{where(exc)}: the template ran longer than {RENDER_SECONDS} s (a loop over too much?); simplify it"
        ) from None
    except RecursionError:
        raise fail(f"{source}: the template is nested too deeply; flatten it") from None
    except MemoryError:
        raise fail(too_much_memory(source)) from None
    except UserInputError as exc:  # an included file that cannot be read
        raise fail(f"{source}: include: {exc}") from None
    except Exception as exc:
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise fail(f"{where(exc)}: template error: {message}") from None


def load_fdl(path: Path, values_files: list[Path] | None = None, assignments: list[str] | None = None) -> FdlDocument:
    """Render the FDL template at `path` with the given values and validate the result."""
    source = shown_path(path)
    try:
        text = read_user_text(path, "FDL file", missing="see templates/services/ for examples")
    except UserInputError as exc:
        raise FdlError([str(exc)]) from None
    values = load_values(values_files or [], assignments or [])
    folder = path.resolve().parent
    rendered, insertions = render_template(text, source, values, folder)
    try:
        document = parse_fdl(rendered, source, folder, insertions.put_back)
    except FdlError as exc:
        raise FdlError([insertions.scrub(line) for line in exc.lines]) from None
    return dataclasses.replace(document, credential_values=tuple(insertions.credentials))
