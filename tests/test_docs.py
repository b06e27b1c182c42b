"""The documentation is checked against the code.

* ``docs/api/`` is regenerated into a temporary directory and must equal the committed copy.
* Every fenced ``python`` block in ``docs/*.md`` whose first line is ``# doctest: run`` runs:
  a block that defines ``test_*`` functions is run with pytest (in one subprocess for all
  of them); any other block is executed here, in a fresh namespace. Either way it must
  leave no rxtweet thread behind.
* The event/hook table in ``docs/events.md`` matches ``rxtweet.events`` and the dispatch
  in ``rxtweet.basestream``.
* Relative links between the docs point to files that exist.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import rxtweet
from rxtweet import events as events_module
from rxtweet.basestream import BaseStream

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATOR = ROOT / "scripts" / "gen_api_docs.py"
MARK = "# doctest: run"
#: Seconds one runnable block may take (they take well under one).
BLOCK_TIMEOUT = 60

_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_api_docs"] = module
    spec.loader.exec_module(module)
    return module


def _runnable_blocks() -> list[tuple[str, str]]:
    """(id, code) of every runnable block: id is ``file.md:line``."""
    blocks = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            code = match.group("code")
            if code.startswith(MARK):
                line = text.count("\n", 0, match.start()) + 1
                blocks.append((f"{path.name}:{line}", code))
    return blocks


BLOCKS = _runnable_blocks()
PYTEST_BLOCKS = [(name, code) for name, code in BLOCKS if re.search(r"^def test_", code, re.M)]
PLAIN_BLOCKS = [(name, code) for name, code in BLOCKS if (name, code) not in PYTEST_BLOCKS]


def _module_name(block_id: str) -> str:
    return "test_" + re.sub(r"\W", "_", block_id)


def _rxtweet_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rxtweet-")]


def _assert_no_threads_left(timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while _rxtweet_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _rxtweet_threads(), f"threads left behind: {_rxtweet_threads()}"


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


# --- runnable blocks ---------------------------------------------------------------------------


def test_the_docs_have_runnable_examples() -> None:
    files = {name.split(":")[0] for name, _ in BLOCKS}
    for required in ("events.md", "migrating-from-tweepy.md", "reconnect.md", "testing.md"):
        assert required in files
    assert PYTEST_BLOCKS and PLAIN_BLOCKS


@pytest.mark.integration
@pytest.mark.parametrize("code", [c for _, c in PLAIN_BLOCKS], ids=[n for n, _ in PLAIN_BLOCKS])
def test_runnable_block(code: str) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            exec(compile(code, "<docs block>", "exec"), namespace)
        except BaseException as exc:  # reported below, on the test's thread
            failure.append(exc)

    runner = threading.Thread(target=run, name="docs-block", daemon=True)
    runner.start()
    runner.join(BLOCK_TIMEOUT)
    assert not runner.is_alive(), f"the block did not finish within {BLOCK_TIMEOUT} s"
    if failure:
        raise failure[0]
    _assert_no_threads_left()


@pytest.fixture(scope="module")
def pytest_blocks_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every pytest-style block in one pytest subprocess; outcome per block."""
    workdir = tmp_path_factory.mktemp("doc_tests")
    for name, code in PYTEST_BLOCKS:
        (workdir / f"{_module_name(name)}.py").write_text(code, encoding="utf-8")
    report = workdir / "report.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
            f"--junitxml={report}",
            str(workdir),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outcomes: dict[str, list[str]] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            module = case.get("classname", "").rsplit(".", 1)[-1]
            problems = [
                f"{case.get('name')}: {child.get('message', '')}\n{child.text or ''}"
                for child in case
                if child.tag in ("failure", "error")
            ]
            outcomes.setdefault(module, []).extend(problems or ["passed"])
    return {"outcomes": outcomes, "output": result.stdout[-4000:] + result.stderr[-2000:]}


@pytest.mark.integration
@pytest.mark.parametrize("block_id", [n for n, _ in PYTEST_BLOCKS])
def test_pytest_block(block_id: str, pytest_blocks_report: dict[str, Any]) -> None:
    results = pytest_blocks_report["outcomes"].get(_module_name(block_id))
    assert results, f"{block_id}: no test ran\n{pytest_blocks_report['output']}"
    failures = [r for r in results if r != "passed"]
    assert not failures, "\n".join(failures)


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
