"""A griffe extension: rxtweet's reStructuredText-isms in docstrings, as mkdocstrings Markdown.

The docstrings are Google-style, which mkdocstrings parses, but their prose uses a few Sphinx
constructs that Markdown does not know. Before the docstrings are parsed, this rewrites:

* ``:class:`~rxtweet.x.Y``` (and ``:func:``, ``:meth:``, ``:attr:``, ``:data:``, ``:mod:``,
  ``:exc:``, ``:obj:``) into an (optional) autorefs cross-reference to ``rxtweet.x.Y``. A relative
  target (``:meth:`run```, ``:class:`Attempt```) is resolved the way Python would see the name
  from the docstring's object, its class and its module. A target in rxtweet that does not
  resolve is reported by griffe's logger, so ``mkdocs build --strict`` fails on it; names of
  other libraries (``reactivex``, ``asyncio``, ...) are shown as code, not linked.
* ``.. marble::`` diagrams (with their ``:alt:`` option) into a literal block.
* ``text::`` before an indented literal block into ``text:`` (Markdown's indented block follows).
* simple ``=====  =====`` tables into Markdown tables.

Enabled in ``mkdocs.yml`` (``extensions: [scripts/griffe_rst.py]``); tested by
``tests/test_docs.py``.
"""

from __future__ import annotations

import builtins
import re
import sys
from typing import Any

import griffe

logger = griffe.logger

ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(~?)([\w.]+)(?:\(\))?`")
# A directive, its ":option: value" lines, up to the blank line before its indented body.
MARBLE = re.compile(
    r"^(?P<indent>[ \t]*)\.\. marble::[ \t]*\n(?:(?P=indent)[ \t]+:\w+:.*\n)*", re.MULTILINE
)
BORDER = re.compile(r"^[ \t]*=+(?:[ \t]+=+)+[ \t]*$")
LITERAL_MARKER = re.compile(r"(\S)::$|^([ \t]*)::$")


def convert(text: str, resolve: Any = None, params: Any = None) -> str:
    """Return ``text`` (one docstring) with the rST constructs above as Markdown.

    ``resolve(target) -> str | None`` turns a role's target into the full dotted path to link
    to (``None``: show it as code); without it, every target is linked as written.
    ``params`` (the callable's parameter names, ``"**"`` among them when it takes ``**kwargs``)
    lets ``Args:`` sections be fitted to what Google style allows (see :func:`_args`).
    """
    text = MARBLE.sub(lambda m: f"{m.group('indent')}Marble diagram:\n", text + "\n")[:-1]
    text = _tables(text)
    text = _doctests(text)
    text = _args(text, params)
    text = "\n".join(
        LITERAL_MARKER.sub(lambda m: f"{m.group(1)}:" if m.group(1) else "", line)
        for line in text.split("\n")
    )

    def role(match: re.Match[str]) -> str:
        short, target = match.groups()
        title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
        path = resolve(target.lstrip(".")) if resolve is not None else target
        if not path:
            return f"`{title}`"
        # Optional: a link when the target is rendered in the reference, code otherwise (a
        # private helper named in prose). Whether the target exists was checked by resolve().
        return f'<autoref identifier="{path}" optional><code>{title}</code></autoref>'

    return ROLE.sub(role, text)


def _tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        border = lines[i]
        indent = border[: len(border) - len(border.lstrip())]
        starts = [m.start() for m in re.finditer(r"=+", border)]
        rows: list[list[str]] = []
        header = 0
        i += 1
        while i < len(lines) and not (BORDER.match(lines[i]) and header):
            line = lines[i]
            i += 1
            if BORDER.match(line):
                header = len(rows)
                continue
            if not line.strip():
                continue
            cells = [""] * len(starts)
            for token in re.finditer(r"\S+", line):
                # A token belongs to the last column starting at or before it, so a cell that
                # overflows its column by a few characters still lands where its author meant.
                column = max(k for k, s in enumerate(starts) if s <= token.start() or k == 0)
                cells[column] = f"{cells[column]} {token.group()}".strip()
            if rows and not cells[0]:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
            else:
                rows.append(cells)
        i += 1  # the closing border
        if not header:  # a table without a header row: the first row is shown as one
            header = 1
        for n, row in enumerate(rows):
            if n == header:
                out.append(indent + "|" + "|".join("---" for _ in starts) + "|")
            out.append(indent + "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        if len(rows) == header:
            out.append(indent + "|" + "|".join("---" for _ in starts) + "|")
    return "\n".join(out)


def _doctests(text: str) -> str:
    """``>>>`` blocks outside a literal block, fenced (Markdown would read ``[a][b]`` in
    their output as a reference link)."""
    out: list[str] = []
    fence: str | None = None  # the open fence's indent
    for line in text.split("\n"):
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if fence is None and stripped.startswith(">>>") and (not out or not out[-1].strip()):
            fence = indent
            out.append(f"{indent}```pycon")
        elif fence is not None and not stripped:
            out.append(f"{fence}```")
            fence = None
        out.append(line)
    if fence is not None:
        out.append(f"{fence}```")
    return "\n".join(out)


ARGS = re.compile(r"^([ \t]*)(?:Args|Arguments|Parameters):[ \t]*$")
ITEM = re.compile(r"^([*\w]+(?:, [*\w]+)*)(?: \([^)]*\))?:(?:\s|$)")


def _args(text: str, params: Any) -> str:
    """Fit ``Args:`` items to griffe's Google parser, which takes one name per item:

    * ``a, b: text`` (several names, one text) becomes ``a: text`` and ``b: as for `a`.``;
    * ``Others: see ...`` (a pointer, not a parameter) becomes a paragraph after the section;
    * an item naming no parameter of a callable that takes ``**kwargs`` (an option it passes
      on) moves to a ``Keyword Args:`` section.
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        header = ARGS.match(lines[i])
        out.append(lines[i])
        i += 1
        if not header:
            continue
        base = len(header.group(1))
        items: list[list[str]] = []
        indent = None
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > base
        ):
            line = lines[i]
            i += 1
            if not line.strip():
                if items:
                    items[-1].append(line)
                continue
            depth = len(line) - len(line.lstrip())
            indent = depth if indent is None else indent
            if (depth == indent and ITEM.match(line.lstrip())) or not items:
                items.append([line])
            else:
                items[-1].append(line)
        kept: list[str] = []
        keyword: list[str] = []
        after: list[str] = []
        pad = " " * (indent or base + 4)
        for item in items:
            while item and not item[-1].strip():
                item.pop()
            head = ITEM.match(item[0].lstrip())
            names = head.group(1).split(", ") if head else []
            if not names or names[0] == "Others":
                after += ["", *(line[len(pad) - base :] if line.strip() else line for line in item)]
                continue
            known = params is None or all(n.lstrip("*") in params for n in names)
            target = kept if known or "**" not in params else keyword
            first, rest = names[0], names[1:]
            target.append(pad + item[0].lstrip().replace(head.group(1), first, 1))
            target += item[1:]
            target += [f"{pad}{name}: as for `{first}`." for name in rest]
        out += kept
        if keyword:
            out += [f"{' ' * base}Keyword Args:", *keyword]
        out += after
        if i < len(lines) and lines[i].strip():
            out.append("")
    return "\n".join(out)


def _lookup(collection: Any, path: str) -> Any:
    try:
        return collection[path]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _resolver(obj: Any, collection: Any, root: str) -> Any:
    def resolve(target: str) -> str | None:
        head, _, rest = target.partition(".")
        if head != root:
            # Relative: the name as seen from the object, then its parents (class, module).
            scope = obj
            full = None
            while scope is not None and full is None:
                members = scope.all_members if scope.is_class else scope.members
                if head in members:
                    member = members[head]
                    full = member.target_path if member.is_alias else member.path
                else:
                    try:
                        full = scope.resolve(head)
                    except (griffe.NameResolutionError, griffe.AliasResolutionError):
                        full = None
                scope = scope.parent
            if full is None and obj.is_module:
                # A module's prose naming a method of its one class that has it
                # (``:meth:`report``` in the module that defines ``Handoff.report``).
                owners = [c for c in obj.classes.values() if head in c.all_members]
                if len(owners) == 1:
                    full = f"{owners[0].path}.{head}"
            if full is None:
                if (
                    head in EXTERNAL_ROOTS
                    or head in sys.stdlib_module_names
                    or hasattr(builtins, head)
                ):
                    return None
                logger.warning("%s: cannot resolve the reference %r", obj.path, target)
                return None
            target = f"{full}.{rest}" if rest else full
        if target.split(".")[0] != root:
            return None
        found = _lookup(collection, target)
        if found is None:
            logger.warning("%s: no object %r for a reference", obj.path, target)
            return None
        return str(target)

    return resolve


# Names a docstring may mention that live outside rxtweet: shown as code, not linked.
EXTERNAL_ROOTS = frozenset(
    {"reactivex", "asyncio", "requests", "urllib3", "threading", "queue", "typing", "json",
     "orjson", "logging", "socket", "io", "collections", "concurrent", "tweepy", "pytest",
     "prometheus_client", "nats", "time", "datetime", "ssl", "http", "zlib", "gzip", "os",
     "pathlib", "signal", "contextlib", "functools", "dataclasses", "enum", "abc", "sys",
     "argparse", "inspect", "weakref", "hypothesis", "responses"}
)  # fmt: skip


def _params(obj: Any) -> set[str] | None:
    try:
        parameters = obj.parameters
    except (AttributeError, griffe.AliasResolutionError):
        return None
    names = {p.name for p in parameters}
    if any(p.kind is griffe.ParameterKind.var_keyword for p in parameters):
        names.add("**")
    return names


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring of the loaded package once it is complete (so names resolve)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._walk(pkg, loader.modules_collection, pkg.name, set())

    def _walk(self, obj: Any, collection: Any, root: str, seen: set[str]) -> None:
        if obj.is_alias or obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = convert(
                obj.docstring.value, _resolver(obj, collection, root), _params(obj)
            )
        for member in obj.members.values():
            self._walk(member, collection, root, seen)
