"""The subset of Go's text/template that docker's --format users write:

    {{.Name}}  {{.State.Status}}  {{json .State}}  {{.Config.Env | json}}
    {{join .Args " "}}  {{upper .Name}}  {{lower .Name}}  {{len .Args}}

plus a leading ``table`` (a header row, columns aligned) and the escapes ``\\t`` and ``\\n``.
A missing field prints ``<no value>``, as Go does. Anything else is a one-line error.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")
NO_VALUE = "<no value>"


class TemplateError(ValueError):
    pass


def _lookup(data: Any, path: str) -> Any:
    if path == ".":
        return data
    value = data
    for key in path.lstrip(".").split("."):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        else:
            return NO_VALUE
    return value


def _text(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "upper": lambda v: _text(v).upper(),
    "lower": lambda v: _text(v).lower(),
    "title": lambda v: _text(v).title(),
    "len": lambda v: len(v) if isinstance(v, list | dict | str) else 0,
    "join": lambda v, sep: sep.join(_text(x) for x in v) if isinstance(v, list) else _text(v),
}


def _arg(token: str, data: Any) -> Any:
    if token.startswith("."):
        return _lookup(data, token)
    if token.startswith('"') or token.startswith("'"):
        return token[1:-1]
    raise TemplateError(f'cannot read {token!r} in the template (use .Field or "text")')


def _eval(expr: str, data: Any) -> Any:
    value: Any = None
    for n, stage in enumerate(s.strip() for s in expr.split("|")):
        try:
            words = shlex.split(stage, posix=False)
        except ValueError as e:
            raise TemplateError(f"bad template action {{{{{expr}}}}}: {e}") from None
        if not words:
            raise TemplateError(f"empty template action {{{{{expr}}}}}")
        head, args = words[0], [_arg(w, data) for w in words[1:]]
        if n:  # a pipeline stage gets the previous value as its last argument
            args.insert(0, value) if head == "join" else args.append(value)
        if head in FUNCS:
            try:
                value = FUNCS[head](*args)
            except TypeError:
                raise TemplateError(f"wrong arguments to {head} in {{{{{expr}}}}}") from None
        elif head.startswith(".") and not args and n == 0:
            value = _lookup(data, head)
        else:
            raise TemplateError(
                f"unknown function {head!r} in {{{{{expr}}}}} (pystats knows: "
                f"{', '.join(sorted(FUNCS))}, and .Field paths)"
            )
    return value


def _text_between(template: str, text: str) -> str:
    """Literal text between actions; a ``{{`` in it opens an action that never closes, which
    Go refuses ("unclosed action") rather than print the template back."""
    if "{{" in text:
        raise TemplateError(f"unclosed action in template {template!r}: a {{{{ without }}}}")
    return text


def render(template: str, data: Any) -> str:
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    out, pos = [], 0
    for m in _ACTION.finditer(template):
        out.append(_text_between(template, template[pos : m.start()]))
        value = _eval(m.group(1), data)
        out.append(value if isinstance(value, str) else _text(value))
        pos = m.end()
    out.append(_text_between(template, template[pos:]))
    return "".join(out)


def header_of(template: str) -> str:
    """A table's header: each {{.Field}} as FIELD in docker's upper-case spelling."""

    def name(m: re.Match[str]) -> str:
        fields = re.findall(r"\.([A-Za-z_][\w.]*)", m.group(1))
        return fields[-1].split(".")[-1].upper() if fields else ""

    return _ACTION.sub(name, template.replace("\\t", "\t").replace("\\n", "\n"))


def render_rows(template: str, rows: Sequence[Any]) -> list[str]:
    """Render each row; a ``table`` template gets a header and aligned columns."""
    if not template.startswith("table"):
        return [render(template, r) for r in rows]
    body = template[len("table") :].strip() or "{{.Names}}"
    lines = [header_of(body)] + [render(body, r) for r in rows]
    cells = [line.split("\t") for line in lines]
    ncol = max(len(c) for c in cells)
    widths = [max((len(c[i]) for c in cells if i < len(c)), default=0) for i in range(ncol)]
    return ["   ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in cells]
