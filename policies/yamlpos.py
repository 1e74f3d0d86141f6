"""YAML with positions: every key and value keeps its line and column, for FILE:LINE:COL errors.

Generic on purpose (the agent's config loader can use it too): ``load_with_positions`` composes
the document with PyYAML's safe loader into a small tree of ``YScalar`` / ``YMap`` / ``YSeq``
nodes with 1-based ``line`` and ``col``. Nothing here raises anything but ``ValidationError``:
bad UTF-8, control bytes, syntax errors, unknown tags, duplicate keys, non-scalar keys,
oversized files, deep nesting and alias bombs (``&a [*a, *a, ...]``) all become one error with
a position.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

import yaml

MAX_BYTES = 1 << 20  # a policy or config file is a few KB; refuse anything past 1 MiB
MAX_NODES = 100_000  # nodes after expanding aliases: stops billion-laughs documents
MAX_DEPTH = 64


class ValidationError(Exception):
    """One problem in a file, at a position. ``str()`` is ``FILE:LINE:COL: message``."""

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.col = col
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"

    def __repr__(self) -> str:
        return f"ValidationError({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValidationError) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))


@dataclass(frozen=True, slots=True)
class YScalar:
    """A scalar: ``value`` as YAML 1.1 resolves it (int, float, bool, None, str, ...) and
    ``text`` as written, for fields that want a string whatever it looks like (``comm: on``)."""

    value: object
    text: str
    tag: str
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class YMap:
    items: tuple[tuple[YScalar, YNode], ...]
    line: int
    col: int

    def get(self, key: str) -> YNode | None:
        for k, v in self.items:
            if k.text == key:
                return v
        return None

    def key_nodes(self) -> Iterator[YScalar]:
        return (k for k, _v in self.items)


@dataclass(frozen=True, slots=True)
class YSeq:
    items: tuple[YNode, ...]
    line: int
    col: int


YNode: TypeAlias = YScalar | YMap | YSeq


def kind(node: YNode) -> str:
    """A word for error messages: 'a mapping', 'a list', 'a string', 'a number', ..."""
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    v = node.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    return f"a {type(v).__name__}"


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _decode(data: bytes | str, filename: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        good = data[: e.start].decode("utf-8", "replace")
        line, col = _position(good, len(good))
        raise ValidationError(
            filename, line, col, f"not UTF-8 text (byte 0x{data[e.start]:02x}): is this YAML?"
        ) from None


class _Builder:
    """Turns composed PyYAML nodes into positioned nodes, counting nodes across aliases."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.count = 0
        self.constructor = yaml.SafeLoader("")  # only its construct_object is used

    def _err(self, node: yaml.Node, message: str) -> ValidationError:
        return ValidationError(
            self.filename, node.start_mark.line + 1, node.start_mark.column + 1, message
        )

    def build(self, node: yaml.Node, depth: int = 0) -> YNode:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._err(
                node, f"document too large: more than {MAX_NODES} values once aliases are expanded"
            )
        if depth > MAX_DEPTH:
            raise self._err(node, f"nesting deeper than {MAX_DEPTH} levels")
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, yaml.ScalarNode):
            try:
                value = self.constructor.construct_object(node, deep=True)
            except yaml.MarkedYAMLError as e:
                why = e.problem or "unreadable value"
                raise self._err(node, f"cannot read value {node.value!r}: {why}") from None
            except (yaml.YAMLError, ValueError, TypeError, OverflowError) as e:
                raise self._err(node, f"cannot read value {node.value!r}: {_one_line(e)}") from None
            return YScalar(value, str(node.value), node.tag, line, col)
        if isinstance(node, yaml.SequenceNode):
            return YSeq(tuple(self.build(n, depth + 1) for n in node.value), line, col)
        if isinstance(node, yaml.MappingNode):
            items: list[tuple[YScalar, YNode]] = []
            seen: dict[str, YScalar] = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise self._err(knode, "merge keys (<<) are not supported: repeat the keys")
                key = self.build(knode, depth + 1)
                if not isinstance(key, YScalar):
                    raise self._err(knode, f"a key must be a plain word, not {kind(key)}")
                if key.text in seen:
                    first = seen[key.text]
                    raise self._err(
                        knode,
                        f"duplicate key {key.text!r} (first at line {first.line}, "
                        f"column {first.col})",
                    )
                seen[key.text] = key
                items.append((key, self.build(vnode, depth + 1)))
            return YMap(tuple(items), line, col)
        raise self._err(node, "unsupported YAML node")  # pragma: no cover


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


_MARK_RE = re.compile(r'\s*in "<[^>]*>", line \d+, column \d+')


# What PyYAML's words most often mean in a hand-written file (a hint after its message).
_HINTS = (
    ("cannot start any token", "YAML indents with spaces, not tabs"),
    ("mapping values are not allowed here", "a line indented too far, a ': ' in an unquoted "
     "value, or a line above without its ':'"),
    ("while scanning a quoted scalar", "a quote opened and never closed"),
    ("but found '<block mapping start>'", "this line's indentation matches none of the lines "
     "above it"),
    ("could not find expected ':'", "a KEY: VALUE line without its ':', or an unclosed quote"),
)  # fmt: skip


def _hint(problem: str) -> str:
    return next((f" ({hint})" for words, hint in _HINTS if words in problem), "")


def _yaml_error(e: yaml.YAMLError, text: str, filename: str) -> ValidationError:
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        what = e.problem or "syntax error"
        if e.context:
            what = f"{e.context}: {what}"
        return ValidationError(
            filename,
            mark.line + 1,
            mark.column + 1,
            f"YAML: {_MARK_RE.sub('', what)}{_hint(what)}",
        )
    if isinstance(e, yaml.reader.ReaderError):
        line, col = _position(text, e.position)
        char = chr(e.character) if isinstance(e.character, int) else str(e.character)
        return ValidationError(
            filename, line, col, f"control character {char!r} is not allowed in YAML"
        )
    return ValidationError(filename, 1, 1, f"YAML: {_MARK_RE.sub('', _one_line(e))}")


def load_with_positions(data: bytes | str, filename: str) -> YNode | None:
    """The positioned tree of a single YAML document (None if it is empty).

    Raises ValidationError only, whatever ``data`` holds.
    """
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > MAX_BYTES:
        raise ValidationError(filename, 1, 1, f"file is {size} bytes, more than {MAX_BYTES}")
    text = _decode(data, filename)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise _yaml_error(e, text, filename) from None
    except RecursionError:
        raise ValidationError(filename, 1, 1, f"nesting deeper than {MAX_DEPTH} levels") from None
    if node is None:
        return None
    try:
        return _Builder(filename).build(node)
    except RecursionError:
        raise ValidationError(filename, 1, 1, f"nesting deeper than {MAX_DEPTH} levels") from None


def load_file(path: str, display: str | None = None) -> YNode | None:
    """``load_with_positions`` of a file; an unreadable file is a ValidationError at 1:1."""
    name = display or path
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ValidationError(name, 1, 1, f"cannot read the file: {e.strerror or e}") from None
    return load_with_positions(data, name)
