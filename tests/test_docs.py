"""The documentation is checked against the code.

* The site builds with ``mkdocs build --strict`` (broken links and anchors, pages missing
  from the navigation, references to names that do not exist and docstring warnings all
  fail it), and its API reference documents every public name.
* ``scripts/griffe_rst.py`` (the docstrings' rST roles, marble diagrams and tables as
  Markdown) and ``scripts/mkdocs_hooks.py`` (links out of ``docs/``) do what they say.
* The event/hook table in ``docs/events.md`` matches ``rxtweet.events`` and the dispatch
  in ``rxtweet.basestream``.
* Relative links between the docs point to files that exist.
* The names the pages tell users to import exist.

The Python blocks of the README and of ``docs/*.md`` are run by ``tests/test_snippets.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import importlib.util
import re
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import rxtweet
from rxtweet import events as events_module
from rxtweet.basestream import BaseStream

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # Not -q: it hides the warnings from --strict's count.
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
         "-d", str(site)],
        cwd=config.parent, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


# --- the site and its API reference --------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = _mkdocs_build(ROOT / "mkdocs.yml", out)
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stdout}{built.stderr}"
    return out


def _inventory(site: Path) -> set[str]:
    # objects.inv: four header lines, then zlib'd "name domain:role priority uri dispname".
    *header, body = site.joinpath("objects.inv").read_bytes().split(b"\n", 4)
    assert header[0] == b"# Sphinx inventory version 2"
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


#: The modules with a page in docs/reference/ (whose __all__ is public API, see CHANGELOG.md).
REFERENCE_MODULES = [
    "rxtweet.v2", "rxtweet.v2.models", "rxtweet.v1", "rxtweet.events", "rxtweet.errors",
    "rxtweet.reconnect", "rxtweet.recovery", "rxtweet.aio", "rxtweet.operators",
    "rxtweet.metrics", "rxtweet.substreams", "rxtweet.basestream", "rxtweet.connection",
    "rxtweet.partitions", "rxtweet.handoff", "rxtweet.parse", "rxtweet.transport_base",
    "rxtweet.transport", "rxtweet.http", "rxtweet.testing", "rxtweet.v2.compliance",
    "rxtweet.v2.likes", "rxtweet.v2.labels", "rxtweet.v2.activity", "rxtweet.v2.async_client",
    "rxtweet.nats", "rxtweet.snowflake",
]  # fmt: skip


def test_every_reference_module_has_a_page() -> None:
    pages = "".join(p.read_text(encoding="utf-8") for p in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: ([\w.]+)", pages, re.MULTILINE))
    assert documented >= {"rxtweet", *REFERENCE_MODULES}


def test_api_reference_covers_the_public_names(site: Path) -> None:
    inventory = _inventory(site)
    missing = [
        f"{module_name}.{name}"
        for module_name in ["rxtweet", *REFERENCE_MODULES]
        for name in importlib.import_module(module_name).__all__
        if f"{module_name}.{name}" not in inventory and name != "__version__"
    ]
    assert not missing, f"public names missing from the API reference: {missing}"


def test_mermaid_diagrams_are_rendered_by_the_theme(site: Path) -> None:
    sources = sum(p.read_text(encoding="utf-8").count("```mermaid") for p in DOCS.glob("*.md"))
    built = sum(
        p.read_text(encoding="utf-8").count('<pre class="mermaid">') for p in site.rglob("*.html")
    )
    assert sources >= 1 and built == sources


def test_docs_pages_are_in_the_site(site: Path) -> None:
    for page in DOCS.glob("*.md"):
        name = "index.html" if page.stem == "README" else f"{page.stem}/index.html"
        assert (site / name).exists(), page.name
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Versioning policy" in changelog


def test_strict_build_fails_on_a_reference_to_nothing(tmp_path: Path) -> None:
    # A docstring naming a function that does not exist (a rename the prose missed).
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(
        '"""Use :func:`pkg.start` or :meth:`Thing.stop`."""\n'
        "class Thing:\n"
        '    """See :meth:`go`."""\n'
        "    def go(self) -> None:\n"
        '        """Go."""\n'
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# x\n\n::: pkg\n")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = re.sub(r"\nnav:.*", "\n", config, flags=re.DOTALL)
    config = config.replace("scripts/", f"{ROOT}/scripts/")
    (tmp_path / "mkdocs.yml").write_text(config)
    (tmp_path / "CHANGELOG.md").write_text("")
    built = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    output = built.stdout + built.stderr
    assert built.returncode != 0
    assert "'pkg.start'" in output and "'pkg.Thing.stop'" in output
    assert "'go'" not in output  # the method it does have resolves


# --- scripts/griffe_rst.py and scripts/mkdocs_hooks.py ----------------------------------------


def test_roles_become_cross_references() -> None:
    convert = _load_script("griffe_rst").convert
    resolved = {"Attempt": "rxtweet.testing.values.Attempt"}
    text = convert(
        "See :class:`~rxtweet.v2.TweetStream`, :meth:`rxtweet.v2.StreamingClient.filter`, "
        ":class:`Attempt` and :func:`reactivex.of`.",
        lambda target: resolved.get(target, target if target.startswith("rxtweet") else None),
    )
    assert text == (
        'See <autoref identifier="rxtweet.v2.TweetStream" optional><code>TweetStream</code>'
        "</autoref>, "
        '<autoref identifier="rxtweet.v2.StreamingClient.filter" optional>'
        "<code>rxtweet.v2.StreamingClient.filter</code></autoref>, "
        '<autoref identifier="rxtweet.testing.values.Attempt" optional><code>Attempt</code>'
        "</autoref> and `reactivex.of`."
    )


def test_marble_literal_blocks_and_doctests() -> None:
    convert = _load_script("griffe_rst").convert
    text = (
        "Retries.\n\n.. marble::\n    :alt: retry\n\n    --a--#\n    [ r ]\n\n"
        "Usage::\n\n    x = 1\n\n>>> [1][0]\n1"
    )
    assert convert(text) == (
        "Retries.\n\nMarble diagram:\n\n    --a--#\n    [ r ]\n\n"
        "Usage:\n\n    x = 1\n\n```pycon\n>>> [1][0]\n1\n```"
    )


def test_simple_tables_become_markdown_tables() -> None:
    convert = _load_script("griffe_rst").convert
    text = (
        "=====  ========  ====\n"
        "event  hook      when\n"
        "=====  ========  ====\n"
        "``A``  ``on_a``  one\n"
        "       (logged)  more\n"
        "B      on_b|x    two\n"
        "=====  ========  ====\n"
    )
    assert convert(text).splitlines() == [
        "| event | hook | when |",
        "|---|---|---|",
        "| ``A`` | ``on_a`` (logged) | one more |",
        "| B | on_b\\|x | two |",
    ]


def test_args_sections_fit_the_google_parser() -> None:
    convert = _load_script("griffe_rst").convert
    text = (
        "Args:\n    key, secret: the credentials,\n        never logged.\n"
        "    stall: seconds.\n    Others (``a``, ``b``): see\n    the base class.\n\nMore."
    )
    assert convert(text, params={"key", "secret", "**"}).splitlines() == [
        "Args:",
        "    key: the credentials,",
        "        never logged.",
        "    secret: as for `key`.",
        "Keyword Args:",
        "    stall: seconds.",
        "",
        "Others (``a``, ``b``): see",
        "the base class.",
        "",
        "More.",
    ]


def test_links_out_of_the_docs_go_to_the_repository(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = _load_script("mkdocs_hooks")
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "notebooks").mkdir()
    markdown = (
        "[r](../README.md#top) [n](../notebooks/) [p](events.md) [x](../missing.md)\n"
        "```\n[r](../README.md)\n```\n"
    )
    out = hooks.outside_links(markdown, "index.md", tmp_path / "docs", "https://h/o/r")
    assert out == (
        "[r](https://h/o/r/blob/main/README.md#top) [n](https://h/o/r/tree/main/notebooks) "
        "[p](events.md) [x](../missing.md)\n```\n[r](../README.md)\n```\n"
    )
    assert "'../missing.md' points to no file" in caplog.text


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


_T0 = datetime.datetime(2026, 11, 29, tzinfo=datetime.UTC)

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
    "Overflowed": events_module.Overflowed(1, 1),
    "Backfilling": events_module.Backfilling(1, 30.0),
    "Recovering": events_module.Recovering(_T0, _T0),
    "Recovered": events_module.Recovered(_T0, _T0, 0),
    "DataLost": events_module.DataLost(_T0, _T0, 0.0),
    "RecoveryUnavailable": events_module.RecoveryUnavailable("refused", 400),
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
    pages = [*DOCS.glob("*.md"), *(DOCS / "reference").glob("*.md"), ROOT / "README.md"]
    pages.append(ROOT / "CHANGELOG.md")
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
