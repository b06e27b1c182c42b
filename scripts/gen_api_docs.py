#!/usr/bin/env python3
"""Generate the API reference (docs/api/*.md) from rxtweet's docstrings.

Usage::

    python scripts/gen_api_docs.py             # rewrite docs/api/
    python scripts/gen_api_docs.py OUT_DIR     # write somewhere else (the staleness test does)
    python scripts/gen_api_docs.py --check     # exit 1 if docs/api/ is out of date

Only the standard library is used (``inspect`` and ``re``). One page is written per module
in :data:`PAGES`; a page lists the names in the module's ``__all__``. The ``rxtweet`` page
groups the top-level exports by the module that defines them, and links to the other pages
for names documented there.

Docstrings are written in reStructuredText with Google-style sections. The converter below
handles what rxtweet's docstrings use: ``literal`` text, ``:role:`target``` references,
``::`` literal blocks, ``>>>`` examples, simple ``===`` tables, directives such as
``.. marble::``, and ``Args:``/``Returns:``/``Attributes:``/``Raises:``/``Examples:``
sections. The output depends only on the source code, so it is the same on every run.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import itertools
import re
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ForwardRef, Generic, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "api"

#: module name -> one-line description, in the order of the index page.
PAGES: dict[str, str] = {
    "rxtweet": "the top-level exports: clients, streams, models, errors, events",
    "rxtweet.v2": "API v2: StreamingClient, TweetStream, rules, parameter checks, models",
    "rxtweet.v1": "API v1.1: Stream, V1Stream, parameter checks, delimited=length, models",
    "rxtweet.events": "lifecycle events and their tweepy hooks",
    "rxtweet.errors": "every exception rxtweet raises, and their hierarchy",
    "rxtweet.reconnect": "ReconnectPolicy, Backoff and the reconnecting operator",
    "rxtweet.transport_base": "the transport seam: Transport, TransportOptions",
    "rxtweet.transport": "the default transport: the cold Observable of lines over requests",
    "rxtweet.substreams": "Substreams, the base of every stream object, and its selectors",
    "rxtweet.operators": "retry_when, share_connection and pass_through",
    "rxtweet.testing": "FakeStreamServer, MockTransport, Attempt and message generators",
}

#: Order of the groups on the ``rxtweet`` page (pages, or defining modules); others follow.
GROUP_ORDER = [
    "rxtweet.v2",
    "rxtweet.v1",
    "rxtweet.basestream",
    "rxtweet.substreams",
    "rxtweet.events",
    "rxtweet.reconnect",
    "rxtweet.errors",
    "rxtweet.http",
]


def _page_of(home: str) -> str | None:
    """The page documenting names defined in module ``home``: the longest page prefix."""
    best = None
    for page in PAGES:
        covers = page != "rxtweet" and (home == page or home.startswith(page + "."))
        if covers and (best is None or len(page) > len(best)):
            best = page
    return best


SECTIONS = {
    "Args",
    "Arguments",
    "Attributes",
    "Examples",
    "Example",
    "Raises",
    "Returns",
    "Yields",
    "Note",
    "Notes",
}


# --- reStructuredText (the subset rxtweet uses) -> Markdown ----------------------------------

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_TABLE_BORDER = re.compile(r"^\s*=+(\s+=+)+\s*$")
_DIRECTIVE = re.compile(r"^(\s*)\.\. ([\w-]+)::\s*(.*)$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    if tilde:
        target = target.rsplit(".", 1)[-1]
    return f"``{target}``"


def inline(text: str) -> str:
    """Inline markup: roles and ``literals`` become `code`; bare ``<`` outside code is escaped."""
    text = _ROLE.sub(_role, text)
    text = _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)
    parts: list[str] = []
    pos = 0
    for span in _CODE_SPAN.finditer(text):
        parts.append(_escape(text[pos : span.start()]))
        parts.append(span.group(0))
        pos = span.end()
    parts.append(_escape(text[pos:]))
    return "".join(parts)


def _escape(text: str) -> str:
    # "<token>" would be swallowed as an HTML tag by Markdown renderers.
    return re.sub(r"<(?=[A-Za-z/!])", "&lt;", text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], start: int, base: int) -> tuple[list[str], int]:
    """The lines after ``start`` that are blank or indented deeper than ``base``."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end], end


def _dedent(lines: list[str]) -> list[str]:
    width = min((_indent(line) for line in lines if line.strip()), default=0)
    return [line[width:] for line in lines]


def _fence(lines: list[str], lang: str = "") -> list[str]:
    body = _dedent(lines)
    while body and not body[0].strip():
        body.pop(0)
    return [f"```{lang}", *body, "```"]


def _table(rows: list[str]) -> list[str]:
    """A simple RST table (``===`` borders) as a Markdown table.

    A cell may overflow its column (as in :mod:`rxtweet.events`), so each row is cut at the
    word that starts nearest to each column's start, not at the column's exact position.
    """
    borders = [i for i, row in enumerate(rows) if _TABLE_BORDER.match(row)]
    starts = [m.start() for m in re.finditer(r"=+", rows[borders[0]])]
    header_end = borders[1]

    def cells(row: str) -> list[str]:
        words = [m.start() for m in re.finditer(r"\S+", row)]
        cuts = [0]
        for start in starts[1:]:
            later = [w for w in words if w > cuts[-1]]
            cuts.append(min(later, key=lambda w: abs(w - start)) if later else len(row))
        cuts.append(len(row))
        parts = [row[a:b].strip() for a, b in itertools.pairwise(cuts)]
        return [inline(part).replace("|", "\\|") for part in parts]

    out = []
    for i, row in enumerate(rows):
        if i in borders or not row.strip():
            continue
        out.append("| " + " | ".join(cells(row)) + " |")
        if i == header_end - 1:
            out.append("|" + "---|" * len(starts))
    return out


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    stripped = line.strip()
    return bool(
        not stripped
        or _DIRECTIVE.match(line)
        or _TABLE_BORDER.match(line)
        or stripped.startswith(">>>")
        or _is_section(stripped)
    )


def _is_section(stripped: str) -> bool:
    return stripped.endswith(":") and not stripped.endswith("::") and stripped[:-1] in SECTIONS


def rst_to_md(doc: str) -> str:
    """Convert one (already dedented) docstring."""
    lines = doc.expandtabs().splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            out.append("")
            i += 1
            continue
        base = _indent(line)
        directive = _DIRECTIVE.match(line)
        if directive:
            body, i = _block(lines, i + 1, base)
            body = [row for row in body if not re.match(r"^\s*:[\w-]+:", row)]
            out.extend(_fence(body, "text"))
            continue
        if _TABLE_BORDER.match(line):
            end = i + 1
            seen = 1
            while end < len(lines) and seen < 3:
                if _TABLE_BORDER.match(lines[end]):
                    seen += 1
                end += 1
            out.extend(_table(lines[i:end]))
            i = end
            continue
        if stripped.startswith(">>>"):
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            out.extend(_fence(lines[i:end], "pycon"))
            i = end
            continue
        if _is_section(stripped):
            out.append(f"**{stripped}**")
            out.append("")
            body, i = _block(lines, i + 1, base)
            out.extend(_section(stripped.rstrip(":"), _dedent(body)))
            continue
        # A paragraph: up to a blank line, a block, or a line ending in "::".
        para: list[str] = []
        literal = False
        while i < len(lines) and (not para or not _starts_block(lines, i)):
            text = lines[i].rstrip()
            i += 1
            if text.endswith("::"):
                text = text[:-2].rstrip()
                if text:
                    para.append(text + ":")
                literal = True
                break
            para.append(text)
        if para:
            out.append(inline("\n".join(para)))
        if literal:
            body, i = _block(lines, i, base)
            out.append("")
            out.extend(_fence(body))
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_ENTRY = re.compile(r"^([^\s:][^:]{0,60}?): (.*)$")


def _section(name: str, body: list[str]) -> list[str]:
    if name in ("Examples", "Example"):
        return [rst_to_md("\n".join(body))]
    entries: list[list[str]] = []
    for line in body:
        if not line.strip():
            continue
        if not entries or (_indent(line) == 0 and _ENTRY.match(line)):
            entries.append([line.strip()])
        else:
            entries[-1].append(line.strip())
    out = []
    for entry in entries:
        match = _ENTRY.match(entry[0])
        if not match:
            out.append(inline(" ".join(entry)))
            continue
        head, rest = match.groups()
        text = inline(" ".join([rest, *entry[1:]]))
        if re.fullmatch(r"[\w.*, ]+", head):
            out.append(f"- `{head}`: {text}")
        else:
            out.append(f"- {inline(head)}: {text}")
    return out


# --- signatures --------------------------------------------------------------------------------


def _annotation(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, ForwardRef):  # a NamedTuple's annotations, as written
        return annotation.__forward_arg__
    return inspect.formatannotation(annotation)


def _default(value: Any) -> str:
    if isinstance(value, type):
        return value.__qualname__
    if isinstance(value, float) and value == float("inf"):
        return "math.inf"
    if isinstance(value, frozenset):
        return "frozenset({" + ", ".join(repr(v) for v in sorted(value)) + "})"
    if isinstance(value, types.BuiltinFunctionType | types.FunctionType):
        return f"{value.__module__}.{value.__qualname__}"
    text = repr(value)
    if " at 0x" in text:
        raise ValueError(f"default {text} has no stable repr")
    return text


def signature(obj: Callable[..., Any], *, skip_self: bool = False) -> str:
    """``(a: int, *, b: str = 'x') -> bool`` from ``inspect``, annotations as written."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(*args)" if inspect.isclass(obj) and issubclass(obj, BaseException) else "(...)"
    params = list(sig.parameters.values())
    if skip_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    parts: list[str] = []
    kw_marker = False
    pos_only = False
    for param in params:
        if param.kind is param.POSITIONAL_ONLY:
            pos_only = True
        elif pos_only:
            parts.append("/")
            pos_only = False
        if param.kind is param.KEYWORD_ONLY and not kw_marker:
            parts.append("*")
            kw_marker = True
        if param.kind is param.VAR_POSITIONAL:
            kw_marker = True
            text = f"*{param.name}"
        elif param.kind is param.VAR_KEYWORD:
            text = f"**{param.name}"
        else:
            text = param.name
        if param.annotation is not param.empty:
            text += f": {_annotation(param.annotation)}"
        if param.default is not param.empty:
            spaced = param.annotation is not param.empty
            text += f"{' = ' if spaced else '='}{_default(param.default)}"
        parts.append(text)
    if pos_only:
        parts.append("/")
    result = f"({', '.join(parts)})"
    if sig.return_annotation is not sig.empty:
        result += f" -> {_annotation(sig.return_annotation)}"
    return result


# --- pages -------------------------------------------------------------------------------------


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj) if not isinstance(obj, property) else inspect.getdoc(obj.fget)
    return rst_to_md(doc) if doc else ""


def _source_line(obj: Any) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 10**9


def _constants(module: types.ModuleType) -> dict[str, tuple[int, str, str]]:
    """name -> (line, ``#:`` comment, right-hand side as written) for one-line assignments.

    Looks in the module and then in its submodules (a package re-exports their names).
    """
    found: dict[str, tuple[int, str, str]] = {}
    prefix = module.__name__ + "."
    submodules = [m for name, m in sys.modules.items() if name.startswith(prefix) and m]
    sources = [module, *sorted(submodules, key=lambda m: m.__name__)]
    for source_module in sources:
        try:
            source = inspect.getsource(source_module)
        except (OSError, TypeError):
            continue
        lines = source.splitlines()
        for number, line in enumerate(lines):
            match = re.match(r"^([A-Za-z_]\w*)\s*(:\s*[^=]+)?=\s*(.+)$", line)
            if not match or match.group(1) in found:
                continue
            comment: list[str] = []
            back = number - 1
            while back >= 0 and lines[back].startswith("#:"):
                comment.insert(0, lines[back][2:].strip())
                back -= 1
            rhs = match.group(3).strip()
            if rhs.count("(") != rhs.count(")") or rhs.count("[") != rhs.count("]"):
                rhs = ""  # spans several lines: use the value's repr instead
            elif "TypeAlias" in (match.group(2) or "") and rhs[:1] in "\"'":
                rhs = rhs[1:-1]  # a type alias written as a string
            found[match.group(1)] = (number + 1, " ".join(comment), rhs)
    return found


def _documented_classes() -> set[type]:
    classes: set[type] = set()
    for name in PAGES:
        module = importlib.import_module(name)
        for export in getattr(module, "__all__", []):
            obj = getattr(module, export)
            if inspect.isclass(obj):
                classes.add(obj)
    return classes


def _members(cls: type, documented: set[type]) -> list[tuple[str, Any, type]]:
    """Public members defined by ``cls`` or by an undocumented rxtweet base class."""
    seen: set[str] = set()
    members: list[tuple[str, Any, type]] = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("rxtweet"):
            continue
        if klass is not cls and klass in documented:
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            if any(
                name in vars(base)
                for base in cls.__mro__[1:]
                if not base.__module__.startswith("rxtweet") and base is not object
            ):
                continue  # an override of a third-party hook (HTTPAdapter.init_poolmanager)
            seen.add(name)
            members.append((name, value, klass))
    return members


def _field_names(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(getattr(cls, "_fields", ()))


def _public_bases(cls: type) -> list[type]:
    """The bases of ``cls``, with a private base (``_Model``) replaced by its own bases."""
    bases: list[type] = []
    for base in cls.__bases__:
        if base is object or base is Generic:
            continue
        if base is tuple and hasattr(cls, "_fields"):
            base = NamedTuple  # type: ignore[assignment]
        if base.__name__.startswith("_"):
            bases.extend(b for b in _public_bases(base) if b not in bases)
        elif base not in bases:
            bases.append(base)
    return bases


def _is_field_descriptor(value: Any) -> bool:
    """A data descriptor of rxtweet's own (``models.Field``), not a function or property."""
    kind = type(value)
    return (
        hasattr(kind, "__get__")
        and kind.__module__.startswith("rxtweet")
        and not isinstance(value, property | classmethod | staticmethod | types.FunctionType)
    )


def render_class(name: str, cls: type, documented: set[type], level: int) -> list[str]:
    hashes = "#" * level
    bases = _public_bases(cls)
    base_text = ", ".join(
        b.__name__
        if b.__module__.startswith(("rxtweet", "builtins", "typing"))
        else f"{b.__module__}.{b.__qualname__}"
        for b in bases
    )
    out = [f"{hashes} `{name}`", ""]
    head = f"class {name}" + (f"({base_text})" if base_text else "")
    init_sig = signature(cls).removesuffix(" -> None")
    out += ["```python", head, f"{name}{init_sig}", "```", ""]
    doc = _doc(cls)
    if doc:
        out += [doc, ""]
    fields = set(_field_names(cls))
    model_fields: list[str] = []
    methods: list[list[str]] = []
    for member, value, owner in _members(cls, documented):
        if member in fields or isinstance(value, types.MemberDescriptorType):
            continue
        where = "" if owner is cls else f" *(from `{owner.__name__}`)*"
        if _is_field_descriptor(value):  # rxtweet.models.Field and the like
            required = " (required)" if getattr(value, "required", False) else ""
            model_fields.append(f"`{member}`{required}")
            continue
        if isinstance(value, property):
            heading = f"{hashes}# `{name}.{member}`"
            methods.append([heading, "", f"*property*{where}", "", _doc(value) or ""])
        elif isinstance(value, classmethod | staticmethod):
            func = value.__func__
            kind = "classmethod" if isinstance(value, classmethod) else "staticmethod"
            sig = signature(func, skip_self=isinstance(value, classmethod))
            heading = f"{hashes}# `{name}.{member}()`"
            methods.append(
                [
                    heading,
                    "",
                    "```python",
                    f"{name}.{member}{sig}",
                    "```",
                    "",
                    f"*{kind}*{where}",
                    "",
                    _doc(func),
                ]
            )
        elif inspect.isfunction(value):
            heading = f"{hashes}# `{name}.{member}()`"
            sig = signature(value, skip_self=True)
            methods.append(
                [
                    heading,
                    "",
                    "```python",
                    f"{member}{sig}",
                    "```",
                    "",
                    *([where.strip(), ""] if where else []),
                    _doc(value),
                ]
            )
        elif callable(value) or isinstance(value, types.GetSetDescriptorType):
            continue
        else:
            try:
                shown = f"`= {_default(value)}`{where}"
            except ValueError:
                shown = f"*attribute*{where}"
            methods.append([f"{hashes}# `{name}.{member}`", "", shown, ""])
    if model_fields:
        out += ["Fields (converted on read): " + ", ".join(model_fields) + ".", ""]
    for block in methods:
        out += [line for line in block] + [""]
    return out


def render_function(name: str, func: Callable[..., Any], level: int) -> list[str]:
    out = [f"{'#' * level} `{name}()`", "", "```python", f"{name}{signature(func)}", "```", ""]
    doc = _doc(func)
    if doc:
        out += [doc, ""]
    return out


def render_constant(
    name: str, value: Any, info: tuple[int, str, str] | None, level: int
) -> list[str]:
    out = [f"{'#' * level} `{name}`", ""]
    comment = info[1] if info else ""
    if name == "__version__":
        out += ['The installed version of rxtweet, a string such as `"0.1.0"`.', ""]
        return out
    rhs = info[2] if info and info[2] else _default(value)
    out += ["```python", f"{name} = {rhs}", "```", ""]
    if comment:
        out += [inline(comment), ""]
    return out


def _position(module_name: str, name: str, obj: Any) -> int:
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return _source_line(obj)
    module = importlib.import_module(module_name)
    info = _constants(module).get(name)
    return info[0] if info else 10**9


def _defining_module(module: types.ModuleType, name: str, obj: Any) -> str:
    owner = getattr(obj, "__module__", None)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return str(owner)
    return module.__name__


def render_entries(
    entries: Iterable[tuple[str, Any, str]], documented: set[type], level: int
) -> list[str]:
    out: list[str] = []
    for name, obj, home in entries:
        if inspect.isclass(obj):
            out += render_class(name, obj, documented, level)
        elif inspect.isfunction(obj):
            out += render_function(name, obj, level)
        else:
            info = _constants(importlib.import_module(home)).get(name)
            out += render_constant(name, obj, info, level)
    return out


def _page_file(module_name: str) -> str:
    return f"{module_name}.md"


def render_page(module_name: str, documented: set[type]) -> str:
    module = importlib.import_module(module_name)
    names: list[str] = list(module.__all__)
    out = [
        f"# `{module_name}`",
        "",
        "<!-- Generated by scripts/gen_api_docs.py from the docstrings. Do not edit. -->",
        "",
        "[API reference](README.md) · [documentation](../README.md)",
        "",
    ]
    doc = _doc(module)
    if doc:
        out += [doc, ""]

    entries = []
    for name in names:
        obj = getattr(module, name)
        home = _defining_module(module, name, obj)
        entries.append((name, obj, home))

    if module_name != "rxtweet":
        entries.sort(key=lambda e: (e[2] != module_name, e[2], _position(e[2], e[0], e[1])))
        out += ["## Contents", ""]
        for name, obj, _ in entries:
            label = f"{name}()" if inspect.isfunction(obj) else name
            out.append(f"- [`{label}`](#{anchor(label)})")
        out += [""]
        out += render_entries(entries, documented, level=2)
        return "\n".join(out).rstrip() + "\n"

    # The top-level package: group by defining module; link names documented elsewhere.
    other_pages = {m for m in PAGES if m != "rxtweet"}
    groups: dict[str, list[tuple[str, Any, str]]] = {}
    for entry in entries:
        groups.setdefault(_page_of(entry[2]) or entry[2], []).append(entry)
    order = [m for m in GROUP_ORDER if m in groups] + sorted(
        m for m in groups if m not in GROUP_ORDER
    )
    out += ["## Contents", ""]
    for home in order:
        items = sorted(groups[home], key=lambda e: _position(e[2], e[0], e[1]))
        title = f"`{home}`" if home != "rxtweet" else "package data"
        links = []
        for name, obj, _ in items:
            label = f"{name}()" if inspect.isfunction(obj) else name
            if home in other_pages:
                links.append(f"[`{label}`]({_page_file(home)}#{anchor(label)})")
            else:
                links.append(f"[`{label}`](#{anchor(label)})")
        out.append(f"- {title}: " + ", ".join(links))
    out += [""]
    for home in order:
        if home in other_pages:
            continue
        items = sorted(groups[home], key=lambda e: _position(e[2], e[0], e[1]))
        title = f"`{home}`" if home != "rxtweet" else "Package data"
        out += [f"## {title}", ""]
        defining = importlib.import_module(home) if home != "rxtweet" else module
        summary = (inspect.getdoc(defining) or "").split("\n\n")[0]
        if home != "rxtweet" and summary:
            out += [rst_to_md(summary), ""]
        out += render_entries(items, documented, level=3)
    return "\n".join(out).rstrip() + "\n"


def render_index() -> str:
    out = [
        "# API reference",
        "",
        "<!-- Generated by scripts/gen_api_docs.py from the docstrings. Do not edit. -->",
        "",
        "Generated from the docstrings by `python scripts/gen_api_docs.py`;",
        "`tests/test_docs.py` fails when these pages are out of date.",
        "",
    ]
    for name, description in PAGES.items():
        out.append(f"- [`{name}`]({_page_file(name)}): {description}")
    return "\n".join(out) + "\n"


def generate() -> dict[str, str]:
    """File name -> content of every page."""
    documented = _documented_classes()
    pages = {"README.md": render_index()}
    for name in PAGES:
        pages[_page_file(name)] = render_page(name, documented)
    return pages


def write(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = generate()
    for stale in out_dir.glob("*.md"):
        if stale.name not in pages:
            stale.unlink()
    for name, text in pages.items():
        (out_dir / name).write_text(text, encoding="utf-8")


def check(out_dir: Path = DEFAULT_OUT) -> list[str]:
    """Differences between ``out_dir`` and freshly generated pages (empty when up to date)."""
    problems: list[str] = []
    pages = generate()
    present = {p.name for p in out_dir.glob("*.md")} if out_dir.is_dir() else set()
    for name in sorted(present - set(pages)):
        problems.append(f"{name}: no longer generated")
    for name, text in pages.items():
        path = out_dir / name
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old != text:
            diff = difflib.unified_diff(
                old.splitlines(),
                text.splitlines(),
                f"committed/{name}",
                f"generated/{name}",
                lineterm="",
                n=1,
            )
            problems.append("\n".join(list(diff)[:40]))
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        problems = check()
        for problem in problems:
            print(problem)
        if problems:
            print("docs/api is out of date: run python scripts/gen_api_docs.py", file=sys.stderr)
        return 1 if problems else 0
    out_dir = Path(argv[0]) if argv else DEFAULT_OUT
    write(out_dir)
    print(f"wrote {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
