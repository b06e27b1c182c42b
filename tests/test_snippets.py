"""Every Python block in ``README.md`` and ``docs/*.md`` does what it says when pasted into a
file and run.

Each fenced ```` ```python ```` block (indented ones inside list items too) is one of:

* **a script** (the default): written to a file and run with this interpreter in a
  subprocess, in a temporary working directory. It must exit with status 0 within
  :data:`SCRIPT_TIMEOUT` seconds and leave no ``rxtweet-*`` thread running (the runner
  checks after the script's last line, so a reactive snippet that subscribes must itself
  wait until it is done: ``.run()``, a ``threading.Event`` …).
* **a test file**: a block that defines top-level ``test_*`` functions. All of them run in
  one pytest subprocess, each block as its own module, and every test must pass.
* **a stream that runs until Ctrl-C**: the line before the block is
  ``<!-- run: until-interrupted -->``. The script must print something, then end within
  :data:`INTERRUPT_GRACE` seconds of a SIGINT (with status 0, or Python's usual
  ``KeyboardInterrupt`` ending, and no other traceback).
* **not run**: the line before the block is ``<!-- not-run: REASON -->`` (shell-like
  fragments, a listing, tweepy's own code). :func:`test_not_run_blocks_are_counted` pins
  their number, so a block is never skipped silently, and each must still compile.

How the offline run works (the least magic that lets a snippet stay what a user would
write, with real credentials and X's real URLs):

* Scripts get the names a user supplies, from :data:`CREDENTIALS` (``bearer_token``,
  ``consumer_key``, ``consumer_secret``, ``access_token``, ``access_token_secret``), as
  globals: the runner executes the file with ``runpy.run_path(init_globals=...)``.
* A :class:`~rxtweet.testing.FakeStreamServer` runs in this process for each script. The
  runner points the clients' *default* ``base_url`` at it by patching the keyword default
  of ``StreamingClient.__init__`` and ``Stream.__init__`` (``__init__.__kwdefaults__``),
  and X's URLs written out in a snippet (``https://api.x.com``,
  ``https://stream.twitter.com``) are replaced by the server's URL in the text.
* The server sends v1.1 statuses to a block that mentions ``consumer_key``, otherwise an
  endless stream of v2 messages whose text contains the words the documented rules look for
  (``Tweepy``, ``python``).
* The script file starts with blank lines so that a traceback's line numbers are the
  Markdown file's.

``tests/test_docs.py`` checks the rest of the documentation (the API reference, the event
table, the CLI page, links).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from rxtweet.testing import FakeStreamServer, generate_v2_messages

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Seconds a script may take (they take about one, most of it Python's start-up).
SCRIPT_TIMEOUT = 60
#: Seconds an until-interrupted script may take to print its first line.
FIRST_OUTPUT_TIMEOUT = 30
#: Seconds an until-interrupted script may take to end after SIGINT.
INTERRUPT_GRACE = 5
#: How many blocks are marked ``not-run``, per file. Change it only with the marker.
NOT_RUN_EXPECTED = {
    "architecture.md": 1,
    "asyncio.md": 1,
    "migrating-from-tweepy.md": 1,
    "scaling-out.md": 1,
    "threads.md": 2,
}

CREDENTIALS = {
    "bearer_token": "bearer-token",
    "consumer_key": "consumer-key",
    "consumer_secret": "consumer-secret",
    "access_token": "access-token",
    "access_token_secret": "access-token-secret",
}
REAL_URLS = ("https://api.x.com", "https://stream.twitter.com")

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```python[ ]*\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.MULTILINE | re.DOTALL
)
_NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->$")
_UNTIL_INTERRUPTED = "<!-- run: until-interrupted -->"

#: Run in the subprocess as ``python -c RUNNER script.py URL``.
RUNNER = textwrap.dedent(
    """
    import json, os, runpy, sys, threading, time

    import rxtweet

    script, url, credentials = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    for client in (rxtweet.StreamingClient, rxtweet.Stream):
        client.__init__.__kwdefaults__["base_url"] = url
    sys.argv = [script]
    runpy.run_path(script, init_globals=credentials, run_name="__main__")

    # The same test as rxtweet.testing.live_threads(): every thread rxtweet starts is named
    # "rxtweet-...". Disposal is asynchronous, so give the threads a moment to end.
    def live():
        return [t.name for t in threading.enumerate() if t.name.startswith("rxtweet-")]

    deadline = time.monotonic() + 3
    while live() and time.monotonic() < deadline:
        time.sleep(0.01)
    if live():
        sys.exit(f"the script left rxtweet threads running: {live()}")
    """
)


@dataclass(frozen=True)
class Block:
    """One ```` ```python ```` block: where it is, its code, and how it is run."""

    file: str
    line: int  # the line of the code's first line
    code: str
    kind: str  # "script", "pytest", "until-interrupted" or "not-run"
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def _blocks() -> list[Block]:
    blocks = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            code = textwrap.dedent(match.group("body"))
            line = text.count("\n", 0, match.start("body")) + 1
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
            not_run = _NOT_RUN.match(before)
            if not_run:
                kind, reason = "not-run", not_run.group("reason")
            elif before == _UNTIL_INTERRUPTED:
                kind, reason = "until-interrupted", ""
            elif _defines_tests(code):
                kind, reason = "pytest", ""
            else:
                kind, reason = "script", ""
            blocks.append(Block(path.name, line, code, kind, reason))
    return blocks


def _defines_tests(code: str) -> bool:
    try:
        body = ast.parse(code).body
    except SyntaxError:  # run as a script, where the error is reported with its line
        return False
    return any(isinstance(node, ast.FunctionDef) and node.name.startswith("test_") for node in body)


BLOCKS = _blocks()


def _of_kind(*kinds: str) -> list[Any]:
    return [pytest.param(b, id=b.id) for b in BLOCKS if b.kind in kinds]


# --- the inventory -----------------------------------------------------------------------------


def test_the_blocks_are_found() -> None:
    files = {b.file for b in BLOCKS}
    assert {"README.md", "testing.md", "threads.md", "migrating-from-tweepy.md"} <= files
    assert {b.kind for b in BLOCKS} == {"script", "pytest", "until-interrupted", "not-run"}
    indented = [b for b in BLOCKS if b.file == "threads.md" and "ProcessPoolExecutor(4" in b.code]
    assert indented, "a block indented inside a list item was not found"


def test_not_run_blocks_are_counted() -> None:
    not_run: dict[str, int] = {}
    for block in BLOCKS:
        if block.kind == "not-run":
            not_run[block.file] = not_run.get(block.file, 0) + 1
    assert not_run == NOT_RUN_EXPECTED, [(b.id, b.reason) for b in BLOCKS if b.kind == "not-run"]


@pytest.mark.parametrize("block", _of_kind("not-run"))
def test_not_run_block_is_still_valid_python(block: Block) -> None:
    """A block that cannot run offline is still checked: it must at least compile."""
    compile(block.code, block.id, "exec")


# --- scripts -----------------------------------------------------------------------------------


def _v2_messages() -> Iterator[dict[str, Any]]:
    """Endless v2 messages whose text the documented rules (``Tweepy``, ``python``) match."""
    for message in generate_v2_messages(seed=0):
        message = copy.deepcopy(message)
        message["data"]["text"] = "Tweepy python rxpy: " + message["data"]["text"]
        yield message


def _v1_messages() -> Iterator[dict[str, Any]]:
    """Endless v1.1 statuses."""
    for n in count(1):
        yield {
            "created_at": "Wed Jan 10 12:34:56 +0000 2024",
            "id": 1745000000000000000 + n,
            "id_str": str(1745000000000000000 + n),
            "text": f"Tweepy python rxpy, status {n}",
            "source": "rxtweet tests",
            "in_reply_to_status_id": None,
            "lang": "en",
            "user": {"id": 3, "id_str": "3", "name": "Example", "screen_name": "example"},
        }


def _server_for(block: Block) -> FakeStreamServer:
    messages = _v1_messages() if "consumer_key" in block.code else _v2_messages()
    # No bearer_token check: the tweepy examples pass a literal "BEARER_TOKEN".
    return FakeStreamServer(messages=messages)


def _script(block: Block, url: str, directory: Path) -> list[str]:
    """The command that runs ``block`` as a script against ``url``."""
    code = block.code
    for real in REAL_URLS:
        code = code.replace(real, url)
    path = directory / f"{Path(block.file).stem}_{block.line}.py"
    path.write_text("\n" * (block.line - 1) + code, encoding="utf-8")
    return [sys.executable, "-c", RUNNER, str(path), url, json.dumps(CREDENTIALS)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.integration
@pytest.mark.parametrize("block", _of_kind("script"))
def test_script_block(block: Block, tmp_path: Path) -> None:
    with _server_for(block) as server:
        try:
            result = subprocess.run(
                _script(block, server.url, tmp_path),
                cwd=tmp_path,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=SCRIPT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as timeout:
            output = (timeout.stdout or b"")[-2000:] + (timeout.stderr or b"")[-2000:]
            pytest.fail(f"{block.id} did not end within {SCRIPT_TIMEOUT} s:\n{output!r}")
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout[-2000:]}{result.stderr}"


@pytest.mark.integration
@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
@pytest.mark.parametrize("block", _of_kind("until-interrupted"))
def test_until_interrupted_block(block: Block, tmp_path: Path) -> None:
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with _server_for(block) as server, out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            _script(block, server.url, tmp_path),
            cwd=tmp_path,
            env=_env(),
            stdout=stdout,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + FIRST_OUTPUT_TIMEOUT
            while not out.read_text() and process.poll() is None:
                assert time.monotonic() < deadline, f"{block.id} printed nothing"
                time.sleep(0.05)
            assert process.poll() is None, f"{block.id} ended by itself:\n{err.read_text()}"
            process.send_signal(signal.SIGINT)
            try:
                status = process.wait(INTERRUPT_GRACE)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{block.id} did not end within {INTERRUPT_GRACE} s of Ctrl-C")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    errors = err.read_text()
    # Either a clean exit, or Python's own end for an uncaught KeyboardInterrupt
    # (exit status -SIGINT, the traceback's last line "KeyboardInterrupt").
    clean = status == 0 and "Traceback" not in errors
    interrupted = status in (-signal.SIGINT, 128 + signal.SIGINT, 1) and (
        errors.rstrip().rsplit("\n", 1)[-1] == "KeyboardInterrupt"
        and errors.count("Traceback") == 1
    )
    assert clean or interrupted, f"{block.id}: exit status {status}\n{errors}"
    assert out.read_text().strip()


# --- test files --------------------------------------------------------------------------------


def _module_name(block: Block) -> str:
    return "test_" + re.sub(r"\W", "_", block.id)


@pytest.fixture(scope="module")
def pytest_blocks_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every test-file block in one pytest subprocess; the outcomes per block."""
    workdir = tmp_path_factory.mktemp("doc_tests")
    for block in BLOCKS:
        if block.kind == "pytest":
            (workdir / f"{_module_name(block)}.py").write_text(
                "\n" * (block.line - 1) + block.code, encoding="utf-8"
            )
    report = workdir / "report.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",  # one block that fails to import fails alone
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
            f"--junitxml={report}",
            str(workdir),
        ],
        cwd=workdir,
        env=_env(),
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
@pytest.mark.parametrize("block", _of_kind("pytest"))
def test_pytest_block(block: Block, pytest_blocks_report: dict[str, Any]) -> None:
    results = pytest_blocks_report["outcomes"].get(_module_name(block))
    assert results, f"{block.id}: no test ran\n{pytest_blocks_report['output']}"
    failures = [r for r in results if r != "passed"]
    assert not failures, "\n".join(failures)
