"""YAML (and JSON) documents that remember where each field is, so errors name file, line and field.

Shared by every file dfr reads from people: areas, launch policies, scenarios. A `YamlDoc` collects
`Problem`s instead of raising at the first one, so an operator fixing a file sees every mistake at once,
each pointing at its line.
"""

from __future__ import annotations

import difflib
import reprlib
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

__all__ = [
    "LOADER",
    "MAX_REPORTED_PROBLEMS",
    "DocumentError",
    "Problem",
    "YamlDoc",
    "flag_duplicate_keys",
    "format_loc",
    "load_document",
    "parse_yaml",
    "read_text",
    "short_repr",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an area: which file, where in it (field path, line if known), and what."""

    file: str
    loc: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.loc}: {self.message}" if self.loc else f"{where}: {self.message}"


def format_loc(loc: Iterable[str | int]) -> str:
    """``('docks', 1, 'lat')`` -> ``docks[1].lat``: the way a person would point at it in the file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        elif str(part).isidentifier():
            out += f".{part}" if out else str(part)
        else:
            out += f"[{part!r}]"
    return out


short_repr = reprlib.Repr()
short_repr.maxstring = 60
short_repr.maxother = 60
short_repr.maxlist = short_repr.maxdict = 4
short_repr.maxlevel = 2


class YamlDoc:
    """A parsed file that can turn a field path into a `Problem` with the YAML line of that field.

    Line numbers come from yaml's node marks. JSON parses as YAML for this purpose, and the node tree of a
    GeoJSON file is only composed when a problem is reported, so a valid file is never parsed twice.
    """

    def __init__(self, label: str, node: yaml.Node | None = None, text: str | None = None) -> None:
        self.label = label
        self._node = node
        self._text = text
        self.problems: list[Problem] = []

    def keep_text(self, text: str) -> None:
        """Remember the source so that a node tree can be composed if (and only if) a problem is reported."""
        self._text = text

    @property
    def node(self) -> yaml.Node | None:
        if self._node is None and self._text is not None:
            text, self._text = self._text, None
            try:
                self._node = yaml.compose(text, Loader=LOADER)
            except Exception:  # best effort only: no line numbers then
                self._node = None
        return self._node

    def add(self, loc: Sequence[str | int], message: str) -> None:
        self.problems.append(Problem(self.label, format_loc(loc), message, self.line_of(loc)))

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        node = self.node
        if node is None:
            return None
        key_node: yaml.Node | None = None
        for part in loc:
            if part == "[key]" and key_node is not None:
                node = key_node
                break
            if isinstance(node, yaml.MappingNode):
                hit = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        hit = (k, v)  # the last one wins, as in YAML and json.loads
                if hit is None:
                    break
                key_node, node = hit
            elif (
                isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value)
            ):
                key_node, node = None, node.value[part]
            else:
                break
        return int(node.start_mark.line) + 1

    def add_validation_errors(
        self, exc: ValidationError, model: type[BaseModel], prefix: tuple[str | int, ...]
    ) -> None:
        """Turn pydantic's errors into problems phrased for someone editing the file."""
        for err in exc.errors(include_url=False):
            loc = (*prefix, *err["loc"])
            kind = err["type"]
            if kind == "missing":
                msg = f"missing required key {err['loc'][-1]!r}" if err["loc"] else "missing"
            elif kind == "extra_forbidden":
                key = str(err["loc"][-1])
                msg = f"unknown key {key!r}"
                allowed = _allowed_keys(model, err["loc"][:-1])
                if allowed:
                    close = difflib.get_close_matches(key, allowed, n=1)
                    msg += (
                        f" (did you mean {close[0]!r}?)"
                        if close
                        else f" (expected one of: {', '.join(allowed)})"
                    )
            else:
                msg = err["msg"].removeprefix("Value error, ")
                msg += f" (got {short_repr.repr(err['input'])})"
            self.add(loc, msg)


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and ``X | None`` so that the underlying container or model shows."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the model at ``loc`` accepts, to suggest the right one for a typo."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not (isinstance(part, str) and part in tp.model_fields):
                return []
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_text(path: Path, label: str, limit: int, what: str) -> tuple[str | None, Problem | None]:
    """Read a UTF-8 text file, refusing directories, huge files and undecodable bytes."""
    try:
        if not path.exists():
            return None, Problem(label, "", f"{what} not found")
        if not path.is_file():
            return None, Problem(label, "", f"{what} is not a regular file")
        size = path.stat().st_size
        if size > limit:
            return None, Problem(label, "", f"{what} is too large ({size} bytes; limit {limit})")
        return path.read_bytes().decode("utf-8-sig"), None
    except UnicodeDecodeError as e:
        return None, Problem(label, "", f"{what} is not UTF-8 text ({e.reason} at byte {e.start})")
    except (OSError, ValueError) as e:  # ValueError: e.g. an embedded NUL in the path
        return None, Problem(label, "", f"cannot read {what}: {e}")


def parse_yaml(text: str, label: str) -> tuple[Any, yaml.Node | None, Problem | None]:
    """Parse one YAML document, keeping the node tree for line numbers. Never raises."""
    try:
        loader = LOADER(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        reason = " ".join(str(x) for x in (e.context, e.problem) if x) or str(e)
        return None, None, Problem(label, "", f"not valid YAML: {reason}", line)
    except RecursionError:
        return None, None, Problem(label, "", "not valid YAML: nested too deeply")
    except Exception as e:  # PyYAML raises ValueError etc. for e.g. impossible dates; report, never escape
        return None, None, Problem(label, "", f"not valid YAML: {type(e).__name__}: {e}")
    return data, node, None


def flag_duplicate_keys(doc: YamlDoc) -> None:
    """Flag repeated mapping keys, which YAML and json.loads both resolve silently to the last value."""
    root = doc.node
    if root is None:
        return
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:  # aliases may share or even recurse into nodes
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in keys and k.value != "<<":
                        doc.problems.append(
                            Problem(
                                doc.label,
                                format_loc((*loc, k.value)),
                                f"duplicate key {k.value!r}",
                                int(k.start_mark.line) + 1,
                            )
                        )
                    keys.add(k.value)
                    stack.append((v, (*loc, k.value)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, (*loc, i)) for i, v in enumerate(node.value))


# ---------------------------------------------------------------------------------------------------------
# Whole documents

MAX_REPORTED_PROBLEMS = 50
"""A message lists at most this many problems (all stay in ``problems``)."""

M = TypeVar("M", bound=BaseModel)


class DocumentError(Exception):
    """A file could not be loaded; ``problems`` lists every issue found, ``path`` is the file.

    Each kind of file has its own subclass (``kind`` names it in the message), so callers can tell an
    area from a policy failure while the listing reads the same everywhere.
    """

    kind: ClassVar[str] = "document"

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems: tuple[Problem, ...] = tuple(problems)
        shown = self.problems[:MAX_REPORTED_PROBLEMS]
        n = len(self.problems)
        lines = [f"invalid {self.kind} {path} ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  - {p}" for p in shown]
        if n > len(shown):
            lines.append(f"  ... and {n - len(shown)} more")
        super().__init__("\n".join(lines))


def load_document(
    path: Any, model: type[M], error: type[DocumentError], *, limit: int, what: str, keys: str
) -> tuple[M, YamlDoc, Path]:
    """Read, parse and validate one YAML file against `model`: (the model, its document, its path).

    Raises `error` for anything that stops the reading (not a path, unreadable, not YAML, empty, not a
    mapping at the top, invalid for the model). Problems that do not (duplicate keys) are left in the
    returned document for the caller to report with its own checks. `keys` hints at the top-level keys.
    """
    try:
        file = Path(path)
        label = str(path)
    except TypeError as e:
        raise error(repr(path), [Problem(repr(path), "", f"not a path: {e}")]) from None
    text, prob = read_text(file, label, limit, what)
    if prob is not None or text is None:
        raise error(label, [prob] if prob else [])
    data, node, prob = parse_yaml(text, label)
    if prob is not None:
        raise error(label, [prob])
    doc = YamlDoc(label, node)
    flag_duplicate_keys(doc)
    if data is None:
        raise error(label, [Problem(label, "", "file is empty")])
    if not isinstance(data, dict):
        doc.add((), f"the top level must be a mapping ({keys}), not {type(data).__name__}")
        raise error(label, doc.problems)
    try:
        spec = model.model_validate(data)
    except ValidationError as e:
        doc.add_validation_errors(e, model, ())
        raise error(label, doc.problems) from None
    except RecursionError:
        raise error(label, [*doc.problems, Problem(label, "", "nested too deeply")]) from None
    return spec, doc, file
