"""``rxtweet rules list|add|delete|sync``: the filtered stream's rules (API v2).

``sync FILE`` makes the server's rules equal to a file's. The file is either JSON — a list
of ``{"value": ..., "tag": ...}`` objects (other keys such as ``id`` are ignored, so the
output of ``rxtweet rules list --json`` is a valid input) — or text with one rule per line,
``value`` or ``value<TAB>tag``. A rule is the pair (value, tag): a rule whose tag changes is
deleted and added again. Additions are validated with ``dry_run`` before anything changes;
then the diff is printed (``+`` added, ``-`` removed, ``=`` kept) and applied, without a
question (``--dry-run`` only prints it).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..models import StreamRule
from ..v2 import DEFAULT_BASE_URL, StreamingClient
from .common import CliError, ExitCode, Redactor, bearer_token
from .console import Console, display_width

__all__ = ["Rule", "add_rules_arguments", "parse_rules_file", "run_rules"]

SYNC_DESCRIPTION = """\
Make the server's rules equal to FILE's. FILE is JSON, a list of {"value": ..., "tag": ...}
objects (other keys such as "id" are ignored, so `rxtweet rules list --json` output works),
or text with one rule per line: VALUE or VALUE<TAB>TAG. A rule is its (value, tag) pair: a
rule whose tag changed is deleted and added again. The additions are validated by the server
(dry_run) before anything changes; then the diff is printed (+ added, - removed, = kept) and
applied without a question. --dry-run only prints it."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule as the user sees it; ``id`` is ``None`` for one not on the server."""

    value: str
    tag: str | None = None
    id: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """What makes two rules the same rule."""
        return (self.value, self.tag)

    def show(self) -> str:
        """``value  [tag]  (id)`` for diffs and notices."""
        tag = f"  [{self.tag}]" if self.tag is not None else ""
        rule_id = f"  (id {self.id})" if self.id else ""
        return f"{self.value}{tag}{rule_id}"


def _client(args: argparse.Namespace, redactor: Redactor) -> StreamingClient:
    token = bearer_token(args, redactor)
    return StreamingClient(token, base_url=args.base_url or DEFAULT_BASE_URL, return_type=dict)


def _rules_of(doc: dict[str, Any]) -> list[Rule]:
    return [
        Rule(str(r.get("value", "")), r.get("tag"), None if r.get("id") is None else str(r["id"]))
        for r in doc.get("data") or []
    ]


def _rule_error(error: dict[str, Any]) -> str:
    title = error.get("title") or "rejected"
    details = error.get("details") or [error.get("detail") or error.get("message") or ""]
    messages = [str(d) for d in details if d]
    for nested in error.get("errors") or []:
        if isinstance(nested, dict) and nested.get("message"):
            messages.append(str(nested["message"]))
    return f"{title}: {'; '.join(messages)}" if messages else str(title)


# --- list ----------------------------------------------------------------------------------


def _list(args: argparse.Namespace, client: StreamingClient, console: Console) -> int:
    rules = _rules_of(client.get_rules())
    if args.json:
        doc = [
            {"id": r.id, "value": r.value, **({"tag": r.tag} if r.tag is not None else {})}
            for r in rules
        ]
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return ExitCode.OK
    if not rules:
        console.print("no rules; add one with `rxtweet rules add VALUE [--tag TAG]`")
        return ExitCode.OK
    rows = [("ID", "TAG", "VALUE")] + [(r.id or "", r.tag or "", r.value) for r in rules]
    widths = [max(display_width(row[i]) for row in rows) for i in range(2)]
    for rule_id, tag, value in rows:
        pad_id = " " * (widths[0] - display_width(rule_id))
        pad_tag = " " * (widths[1] - display_width(tag))
        sys.stdout.write(f"{rule_id}{pad_id}  {tag}{pad_tag}  {value}\n")
    return ExitCode.OK


# --- add -----------------------------------------------------------------------------------


def _add(args: argparse.Namespace, client: StreamingClient, console: Console) -> int:
    try:
        doc = client.add_rules(StreamRule(args.value, args.tag), dry_run=args.dry_run or None)
    except BadRequest as exc:
        raise CliError(f"invalid rule {args.value!r}: {exc}", ExitCode.INVALID_RULE) from exc
    code: int = ExitCode.OK
    for rule in _rules_of(doc):
        if args.dry_run:
            shown = Rule(rule.value, rule.tag).show()
            sys.stdout.write(f"+ {shown}  (valid; dry run: not added)\n")
        else:
            sys.stdout.write(f"+ {rule.show()}\n")
    for error in doc.get("errors") or []:
        if error.get("title") == "DuplicateRule":
            console.print(
                f"= {error.get('value', args.value)}: already a rule (id {error.get('id')}); "
                "nothing to do"
            )
        else:
            console.print(f"invalid rule {error.get('value', args.value)!r}: {_rule_error(error)}")
            code = ExitCode.INVALID_RULE
    return code


# --- delete --------------------------------------------------------------------------------


def _delete(args: argparse.Namespace, client: StreamingClient, console: Console) -> int:
    if args.all == bool(args.ids):
        raise CliError("give rule IDs to delete, or --all", ExitCode.USAGE, usage=True)
    current: dict[str, Rule] = {r.id: r for r in _rules_of(client.get_rules()) if r.id}
    if args.all:
        ids = list(current)
        if not ids:
            console.print("no rules to delete")
            return ExitCode.OK
    else:
        ids = list(dict.fromkeys(args.ids))
    unknown = [i for i in ids if i not in current]
    known = [i for i in ids if i in current]
    if known:
        client.delete_rules(known, dry_run=args.dry_run or None)
        for rule_id in known:
            sys.stdout.write(f"- {current[rule_id].show()}\n")
        if args.dry_run:
            console.print("dry run: nothing deleted")
    for rule_id in unknown:
        console.print(f"no rule with id {rule_id}")
    return ExitCode.INVALID_RULE if unknown else ExitCode.OK


# --- sync ----------------------------------------------------------------------------------


def parse_rules_file(text: str, source: str = "rules file") -> list[Rule]:
    """The rules of a file's text: a JSON list of ``{"value", "tag"}`` or ``value<TAB>tag``
    lines. Identical rules are merged.

    Raises:
        CliError: (exit 3) the file is not in either format, a rule has no value, or one
            value appears with two different tags (X allows each value once).
    """
    stripped = text.lstrip("\ufeff").strip()
    rules: list[Rule] = []
    if stripped.startswith(("[", "{")):
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            raise CliError(f"{source}: not valid JSON: {exc}", ExitCode.INVALID_RULE) from exc
        if isinstance(doc, dict):
            doc = doc.get("data") or []
        if not isinstance(doc, list):
            raise CliError(f"{source}: expected a JSON list of rules", ExitCode.INVALID_RULE)
        for n, item in enumerate(doc, 1):
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                raise CliError(
                    f'{source}: rule {n} is not an object with a string "value"',
                    ExitCode.INVALID_RULE,
                )
            tag = item.get("tag")
            if tag is not None and not isinstance(tag, str):
                raise CliError(f'{source}: rule {n}: "tag" must be a string', ExitCode.INVALID_RULE)
            rules.append(Rule(item["value"].strip(), tag))
    else:
        for line in stripped.splitlines():
            if not line.strip():
                continue
            value, _, tag = line.partition("\t")
            rules.append(Rule(value.strip(), tag.strip() or None))
    seen: dict[str, Rule] = {}
    for rule in rules:
        if not rule.value:
            raise CliError(f"{source}: a rule has an empty value", ExitCode.INVALID_RULE)
        other = seen.get(rule.value)
        if other is not None and other.tag != rule.tag:
            raise CliError(
                f"{source}: {rule.value!r} appears with two tags ({other.tag!r} and "
                f"{rule.tag!r}); X allows each rule value once",
                ExitCode.INVALID_RULE,
            )
        seen[rule.value] = rule
    return list(seen.values())


def _read_rules_file(path: str) -> list[Rule]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    return parse_rules_file(text, path)


def _sync(args: argparse.Namespace, client: StreamingClient, console: Console) -> int:
    wanted = _read_rules_file(args.file)
    current = _rules_of(client.get_rules())
    wanted_keys = {r.key for r in wanted}
    kept = [r for r in current if r.key in wanted_keys]
    removed = [r for r in current if r.key not in wanted_keys]
    kept_keys = {r.key for r in kept}
    added = [r for r in wanted if r.key not in kept_keys]
    retagged = {r.value for r in removed}  # a value re-added with another tag

    if added:
        check = _add_many(client, added, dry_run=True)
        problems = [
            e
            for e in check.get("errors") or []
            if not (e.get("title") == "DuplicateRule" and e.get("value") in retagged)
        ]
        if problems:
            for error in problems:
                console.print(f"invalid rule {error.get('value')!r}: {_rule_error(error)}")
            raise CliError(
                f"{len(problems)} rule(s) in {args.file} rejected by the server; nothing changed",
                ExitCode.INVALID_RULE,
            )

    for rule in removed:
        sys.stdout.write(f"- {rule.show()}\n")
    for rule in added:
        sys.stdout.write(f"+ {rule.show()}\n")
    for rule in kept:
        sys.stdout.write(f"= {rule.show()}\n")
    summary = f"{len(added)} to add, {len(removed)} to remove, {len(kept)} kept"
    if args.dry_run:
        console.print(f"{summary} (dry run: nothing changed)")
        return ExitCode.OK
    if removed:
        client.delete_rules([r.id for r in removed if r.id])
    if added:
        result = _add_many(client, added, dry_run=False)
        errors = result.get("errors") or []
        if errors:
            for error in errors:
                console.print(f"not added {error.get('value')!r}: {_rule_error(error)}")
            raise CliError(f"{len(errors)} rule(s) could not be added", ExitCode.INVALID_RULE)
    console.print(f"{len(added)} added, {len(removed)} removed, {len(kept)} kept")
    return ExitCode.OK


def _add_many(client: StreamingClient, rules: list[Rule], *, dry_run: bool) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = client.add_rules(
            [StreamRule(r.value, r.tag) for r in rules], dry_run=dry_run or None
        )
    except BadRequest as exc:
        raise CliError(f"the server rejected the rules: {exc}", ExitCode.INVALID_RULE) from exc
    return doc


# --- entry ---------------------------------------------------------------------------------


def add_rules_arguments(
    rules: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]
) -> None:
    """The ``rules`` sub-commands."""
    actions = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=parents, help="show the rules")
    listing.add_argument("--json", action="store_true", help="print JSON (a valid sync FILE)")
    add = actions.add_parser("add", parents=parents, help="add a rule")
    add.add_argument("value", metavar="VALUE", help='the rule, e.g. "cat has:images lang:en"')
    add.add_argument("--tag", metavar="TAG", help="a label, sent back with matching tweets")
    add.add_argument("--dry-run", action="store_true", help="only validate the rule")
    delete = actions.add_parser("delete", parents=parents, help="delete rules by id")
    delete.add_argument("ids", nargs="*", metavar="ID", help="rule ids (see `rules list`)")
    delete.add_argument("--all", action="store_true", help="delete every rule")
    delete.add_argument("--dry-run", action="store_true", help="only check the deletion")
    sync = actions.add_parser(
        "sync",
        parents=parents,
        help="make the rules equal to a file's",
        description=SYNC_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sync.add_argument("file", metavar="FILE", help="JSON list or value<TAB>tag lines; - for stdin")
    sync.add_argument("--dry-run", action="store_true", help="only print the diff")
    for parser in (listing, add, delete, sync):
        parser.set_defaults(usage_parser=parser)


def run_rules(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet rules ACTION``."""
    client = _client(args, redactor)
    action = {"list": _list, "add": _add, "delete": _delete, "sync": _sync}[args.rules_command]
    return action(args, client, console)
