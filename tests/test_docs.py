"""The documentation is checked against the code.

* ``docs/api/`` is regenerated into a temporary directory and must equal the committed copy.
* The event/hook table in ``docs/events.md`` matches ``rxtweet.events`` and the dispatch
  in ``rxtweet.basestream``.
* Relative links between the docs point to files that exist.
* The names the pages tell users to import exist.

The Python blocks of the README and of ``docs/*.md`` are run by ``tests/test_snippets.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import rxtweet
from rxtweet import events as events_module
from rxtweet.basestream import BaseStream

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATOR = ROOT / "scripts" / "gen_api_docs.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_api_docs"] = module
    spec.loader.exec_module(module)
    return module


# --- the generated API reference ---------------------------------------------------------------


def test_api_reference_is_up_to_date(tmp_path: Path) -> None:
    generator = _load_generator()
    generator.write(tmp_path)
    committed = DOCS / "api"
    fresh = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.md")}
    old = {p.name: p.read_text(encoding="utf-8") for p in committed.glob("*.md")}
    stale = sorted(name for name in fresh.keys() | old.keys() if fresh.get(name) != old.get(name))
    assert not stale, (
        f"docs/api is out of date ({', '.join(stale)}): run python scripts/gen_api_docs.py\n"
        + "\n".join(generator.check(committed))
    )


def test_api_reference_covers_the_public_names() -> None:
    generator = _load_generator()
    pages = generator.generate()
    for module_name in generator.PAGES:
        module = importlib.import_module(module_name)
        text = pages[f"{module_name}.md"]
        for name in module.__all__:
            assert f"`{name}" in text, f"{module_name}.{name} is missing from docs/api"


# --- docs/events.md against the code ------------------------------------------------------------


def _events_table() -> dict[str, tuple[list[str], str]]:
    """event -> (attributes, hook) from the first table of docs/events.md."""
    text = (DOCS / "events.md").read_text(encoding="utf-8")
    rows: dict[str, tuple[list[str], str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`\w+`", cells[0]) and cells[0] != "`event`":
            attributes = re.findall(r"`(\w+)`", cells[1])
            hook = re.match(r"`(\w+)\(", cells[2])
            assert hook, line
            rows[cells[0].strip("`")] = (attributes, hook.group(1))
        if rows and not line.startswith("|"):
            break
    return rows


def _hook_called_for(event: Any) -> list[str]:
    called: list[str] = []

    class Recorder(BaseStream):
        pass

    recorder = Recorder()
    for name in dir(BaseStream):
        if name.startswith("on_"):
            setattr(recorder, name, lambda *_, _name=name: called.append(_name))
    recorder._on_event(event)
    return called


SAMPLE_EVENTS = {
    "Connected": events_module.Connected(),
    "KeepAlive": events_module.KeepAlive(),
    "Closed": events_module.Closed(),
    "ConnectionFailed": events_module.ConnectionFailed(rxtweet.StreamConnectionError("x")),
    "RequestFailed": events_module.RequestFailed(503),
    "Reconnecting": events_module.Reconnecting(1, 0.0),
    "MalformedMessage": events_module.MalformedMessage(b"x", "not JSON"),
    "UnknownMessage": events_module.UnknownMessage(b'{"friends": []}', ("friends",)),
    "Errored": events_module.Errored(ValueError("x")),
    "Disconnected": events_module.Disconnected(),
}


def test_events_table_lists_every_event_with_its_attributes() -> None:
    table = _events_table()
    public = [n for n in events_module.__all__ if n != "StreamEvent"]
    assert sorted(table) == sorted(public)
    for name, (attributes, _) in table.items():
        cls = getattr(events_module, name)
        assert attributes == [f.name for f in dataclasses.fields(cls)], name


def test_events_table_hooks_match_the_dispatch() -> None:
    for name, (_, hook) in _events_table().items():
        assert hasattr(rxtweet.StreamingClient, hook), hook
        called = _hook_called_for(SAMPLE_EVENTS[name])
        if name == "Disconnected":
            # on_disconnect() is called by the run loop when the run ends (exactly once);
            # the Disconnected event itself goes to on_event.
            assert hook == "on_disconnect" and called == ["on_event"]
        else:
            assert called == [hook], (name, called)


def test_events_table_matches_the_events_module_docstring() -> None:
    doc = events_module.__doc__ or ""
    for name, (_, hook) in _events_table().items():
        row = next(line for line in doc.splitlines() if f":class:`{name}`" in line)
        if hook == "on_event":
            assert "(none; logged)" in row or "``on_event(event)``" in row, row
        else:
            assert f"``{hook}(" in row, row


# --- docs/cli.md against the parser -------------------------------------------------------------


def _parser_options(parser: argparse.ArgumentParser) -> set[str]:
    options: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= _parser_options(sub)
        elif not isinstance(action, argparse._HelpAction):
            options.update(action.option_strings)
    return options


def test_cli_page_lists_every_option_and_exit_status() -> None:
    from rxtweet.cli import build_parser
    from rxtweet.cli.common import ExitCode

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    missing = sorted(o for o in _parser_options(build_parser()) if f"`{o}" not in text)
    assert not missing, f"options missing from docs/cli.md: {missing}"
    rows = set(re.findall(r"^\| (\d+) \|", text, re.MULTILINE))
    assert rows == {str(int(code)) for code in ExitCode}


# --- links -------------------------------------------------------------------------------------


def test_relative_links_point_to_existing_files() -> None:
    pages = [*DOCS.glob("*.md"), *(DOCS / "api").glob("*.md"), ROOT / "README.md"]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: {target}"


# --- names the pages use -------------------------------------------------------------------------


def test_parsed_can_be_imported_from_rxtweet() -> None:
    # stream.items emits Parsed (docs/architecture.md); users annotate and isinstance-check it.
    from rxtweet import Parsed
    from rxtweet.parse import Parsed as ParseParsed

    assert Parsed is ParseParsed and "Parsed" in rxtweet.__all__


def test_tweepy_exception_is_documented_as_the_base_class() -> None:
    # docs/migrating-from-tweepy.md once said there was no TweepyException.
    text = (DOCS / "migrating-from-tweepy.md").read_text(encoding="utf-8")
    assert "no `TweepyException`" not in text
    assert "`TweepyException`" in text and rxtweet.TweepyException is rxtweet.RxTweetException
