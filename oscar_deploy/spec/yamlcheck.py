"""Checked YAML documents (cluster specs, FDL files): line numbers, duplicate keys, one-line problems.

Both documents are validated by pydantic models; this module turns their errors into lines of the form
`source:line: key.path: message`, with a did-you-mean for unknown keys. Two conventions let a validator say
where a problem is and name related keys:

- a model-level check starts its message with `@key.path: ` (relative to the model) to name the key it is
  about, since pydantic would otherwise report it at the model itself;
- `{parent}.key` in a message is replaced by the full path of that sibling key.
"""

from __future__ import annotations

import difflib
import types
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import AliasChoices, BaseModel, ValidationError

from oscar_deploy.support.errors import InvalidDocumentError, shown

KEY_MARK = "@"
PARENT = "{parent}"
Location = tuple[str | int, ...]


def dotted(*parts: str | int) -> str:
    return ".".join(str(part) for part in parts)


def unwrap(annotation: Any) -> Any:
    """The type inside Optional[...] and Annotated[...] (unions of several types are left as they are)."""
    while True:
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):
            candidates = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(candidates) != 1:
                return annotation
            annotation = candidates[0]
        elif hasattr(annotation, "__metadata__"):
            annotation = get_args(annotation)[0]
        else:
            return annotation


def model_class(annotation: Any) -> type[BaseModel] | None:
    candidate = unwrap(annotation)
    return candidate if isinstance(candidate, type) and issubclass(candidate, BaseModel) else None


def field_keys(model: type[BaseModel]) -> dict[str, str]:
    """Every key a model accepts (aliases and alternative spellings included) -> its field name."""
    keys: dict[str, str] = {}
    for name, info in model.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices):
            keys.update({str(choice): name for choice in info.validation_alias.choices})
        else:
            keys[info.alias or name] = name
    return keys


def model_at(root_model: type[BaseModel], path: Location) -> type[BaseModel] | None:
    """The model that validates the mapping at `path`, following fields, list items and dict values."""
    current: Any = root_model
    for part in path:
        current = unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = field_keys(current).get(str(part))
            if field is None:
                return None
            current = current.model_fields[field].annotation
        elif get_origin(current) is list:
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    return model_class(current)


def line_of(root: yaml.Node | None, path: Location) -> int | None:
    """1-based line of the YAML node at `path`, or of its nearest existing parent."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((key, value) for key, value in node.value if key.value == str(part)), None)
            if pair is None:
                break
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def duplicate_keys(node: yaml.Node | None, path: Location = ()) -> list[tuple[int, str]]:
    """(line, message) for each key given twice in one mapping; YAML loaders keep the last one without a word.

    Each node is visited once, however many aliases refer to it (a walk of the expanded tree would take
    exponential time on an alias bomb); its path is that of its first use.
    """
    found: list[tuple[int, str]] = []
    seen: set[int] = set()
    pending: list[tuple[yaml.Node, Location]] = [(node, path)] if node is not None else []
    while pending:
        current, where = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        children: list[tuple[yaml.Node, Location]] = []
        if isinstance(current, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in current.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in first_line:
                    found.append(
                        (line, f"{dotted(*where, key)}: given twice (first at line {first_line[key]}); keep one")
                    )
                else:
                    first_line[key] = line
                children.append((value_node, (*where, key)))
        elif isinstance(current, yaml.SequenceNode):
            children = [(item, (*where, index)) for index, item in enumerate(current.value)]
        pending.extend(reversed(children))
    return sorted(found)


# Limits of a YAML document a user gives us; ours are a few hundred values deep at most.
MAX_DEPTH = 64
MAX_VALUES = 100_000


class YamlLimitError(yaml.MarkedYAMLError):
    """A document past our limits (nesting, values after alias expansion, a recursive alias)."""


class _GuardedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit (its composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise YamlLimitError(problem=f"nested deeper than {MAX_DEPTH} levels", problem_mark=event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
            return value
        except ValueError:
            raise YamlLimitError(problem="a number with too many digits", problem_mark=node.start_mark) from None


_GuardedLoader.add_constructor("tag:yaml.org,2002:int", _GuardedLoader.construct_yaml_int)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node) -> None:
    """Refuse a recursive alias, and a document with more than MAX_VALUES values once aliases are expanded
    (a 9-level alias bomb holds 9^9): each node is visited once, so this is linear in the text."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:
        node, finished = pending.pop()
        key = id(node)
        if finished:
            in_progress.discard(key)
            sizes[key] = min(1 + sum(sizes[id(child)] for child in _children(node)), MAX_VALUES + 1)
            continue
        if key in sizes:
            continue
        if key in in_progress:
            raise YamlLimitError(
                problem="an alias refers to a node that contains it (a recursive structure); remove it",
                problem_mark=node.start_mark,
            )
        in_progress.add(key)
        pending.append((node, True))
        pending.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] > MAX_VALUES:
        raise YamlLimitError(
            problem=f"more than {MAX_VALUES} values once aliases are expanded; write a smaller document",
            problem_mark=root.start_mark,
        )


def load_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree and the data of one YAML document, within the limits above (yaml.YAMLError otherwise).

    One parse serves both: the nodes (lines, duplicate keys) and the data built from them.
    """
    try:
        loader = _GuardedLoader(text)  # its reader refuses control characters (a NUL) at once, without a line
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position)
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1)
        mark = yaml.Mark("<text>", exc.position, line, column, None, 0)
        problem = f"character U+{exc.character:04X} is not allowed"  # text is str: the reader gives a code point
        raise yaml.MarkedYAMLError(problem=problem, problem_mark=mark) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        check_expansion(root)
        try:
            data = loader.construct_document(root)
        except RecursionError:
            raise YamlLimitError(problem="merge keys nested too deeply", problem_mark=root.start_mark) from None
        return root, data
    finally:
        loader.dispose()


def yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    """One line for a YAML error: `source:line: not valid YAML (problem); ...` (no echo of the offending text)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or type(exc).__name__
    if isinstance(exc, YamlLimitError):
        return f"{where}: {problem}"
    return f"{where}: not valid YAML ({problem}); fix the syntax at that line"


def _text_wanted(annotation: Any) -> bool:
    return unwrap(annotation) is str


def keep_scalar_text(node: yaml.Node | None, data: Any, annotation: Any) -> None:
    """Where `annotation` (a model, or a list or dict of them) wants a string, put the scalar back as written.

    YAML 1.1 reads `1.10` as the number 1.1, `012345` as 5349, `0x1F` as 31 and `on` as true; Go's YAML decoders
    (what upstream's tools use) keep the text of any scalar decoded into a string. Changes `data` in place.
    """
    target = unwrap(annotation)
    model = model_class(target)
    if model is not None and isinstance(node, yaml.MappingNode) and isinstance(data, dict):
        keys = field_keys(model)
        pairs = [(str(key.value), value) for key, value in node.value if str(key.value) in keys]
        for key, value_node in pairs:
            if key in data:
                wanted = model.model_fields[keys[key]].annotation
                _keep_item(value_node, data, key, wanted)
    elif get_origin(target) is dict and isinstance(node, yaml.MappingNode) and isinstance(data, dict):
        key_type, wanted = get_args(target)
        scalar_keys = all(isinstance(key, yaml.ScalarNode) and key.value != "<<" for key, _ in node.value)
        if _text_wanted(key_type) and scalar_keys and not all(isinstance(key, str) for key in data):
            # `ON: 1` and `YES: 2` name two variables, not the key True twice: rebuilt from the nodes.
            constructor = yaml.constructor.SafeConstructor()
            rebuilt = {key.value: constructor.construct_object(value, deep=True) for key, value in node.value}
            data.clear()
            data.update(rebuilt)
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value in data:
                _keep_item(value_node, data, key_node.value, wanted)
    elif get_origin(target) is list and isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        wanted = get_args(target)[0]
        for index, item_node in enumerate(node.value[: len(data)]):
            _keep_item(item_node, data, index, wanted)


def _keep_item(node: yaml.Node, container: Any, key: Any, wanted: Any) -> None:
    value = container[key]
    if _text_wanted(wanted):
        if isinstance(node, yaml.ScalarNode) and value is not None and not isinstance(value, str):
            container[key] = node.value
    else:
        keep_scalar_text(node, value, wanted)


class YamlDocument:
    """A parsed YAML text that remembers where each key stands, to report problems by line."""

    def __init__(self, text: str, source: str, error: type[InvalidDocumentError]) -> None:
        self.source = source
        self.error = error
        try:
            self.root, self.data = load_yaml(text)
        except yaml.YAMLError as exc:
            raise error([yaml_problem(exc, source)]) from None
        duplicates = duplicate_keys(self.root)
        if duplicates:
            raise error([f"{source}:{line}: {message}" for line, message in duplicates])

    def located(self, loc: Location, message: str) -> str:
        line = line_of(self.root, loc)
        key = dotted(*loc) or "(top level)"
        return f"{self.source}:{line}: {key}: {message}" if line else f"{self.source}: {key}: {message}"

    def fail(self, problems: list[tuple[Location, str]]) -> InvalidDocumentError:
        return self.error([self.located(loc, message) for loc, message in problems])


def unknown_key_hint(
    root_model: type[BaseModel], path: Location, key: str, misspellings: dict[str, str] | None = None
) -> str:
    model = model_at(root_model, path)
    allowed = [name for name in field_keys(model) if name[0].islower()] if model else []
    known = (misspellings or {}).get(key)
    if known in allowed:
        return f"unknown key; did you mean {known!r}? (upstream would drop it silently)"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; allowed keys: {', '.join(allowed)}" if allowed else "unknown key"


def problems_from(
    error: ValidationError, root_model: type[BaseModel], misspellings: dict[str, str] | None = None
) -> list[tuple[Location, str]]:
    """pydantic's errors as (key path, message) pairs in our wording (see the module docstring)."""
    problems: list[tuple[Location, str]] = []
    for item in error.errors():
        loc: Location = tuple(item["loc"])
        message = item["msg"]
        kind = item["type"]
        if kind == "extra_forbidden":
            message = unknown_key_hint(root_model, loc[:-1], str(loc[-1]), misspellings)
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "literal_error":
            message = f"{shown(item['input'])} is not allowed; {message.replace('Input should be', 'use')}"
        else:
            message = message.removeprefix("Value error, ")
        if message.startswith(KEY_MARK):
            parent = loc  # a model-level check: its loc is the model
            key, _, message = message[len(KEY_MARK) :].partition(": ")
            loc = (*loc, *(int(part) if part.isdigit() else part for part in key.split(".")))
        else:
            parent = loc[:-1]  # a field check: its siblings live in the parent
        problems.append((loc, message.replace(f"{PARENT}.", f"{dotted(*parent)}." if parent else "")))
    return problems
