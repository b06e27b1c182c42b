"""The pytest plugin (``rxtweet.testing.pytest_plugin``), as a user's project gets it.

The user's tests run in a pytest subprocess in a fresh directory, with no conftest: the
fixtures must come from the ``pytest11`` entry point alone (this needs rxtweet installed with
the current pyproject.toml, as ``make install`` does).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = """
import pytest
import requests

from rxtweet.testing import Attempt

STARTED = []


@pytest.fixture
def fake_stream_server_options():
    return {"messages": [b'{"data":{"id":"1","text":"hi"}}'], "bearer_token": "t0ken"}


def test_the_fixture_is_a_started_server_built_with_the_options(fake_stream_server):
    STARTED.append(fake_stream_server)
    fake_stream_server.script(Attempt(ending="close"))
    response = requests.get(
        fake_stream_server.url + "/2/tweets/sample/stream",
        headers={"Authorization": "Bearer t0ken"},
        stream=True,
        timeout=5,
    )
    assert [line for line in response.iter_lines() if line] == [b'{"data":{"id":"1","text":"hi"}}']


def test_the_factory_starts_servers_of_their_own(fake_stream_server_factory):
    first = fake_stream_server_factory()
    second = fake_stream_server_factory(bearer_token="other")
    STARTED.extend([first, second])
    assert first.port != second.port
    answer = requests.get(second.url + "/2/tweets/sample/stream", timeout=5)
    assert answer.status_code == 401


def test_every_server_was_stopped_at_teardown():
    assert len(STARTED) == 3
    assert all(repr(server).endswith(" stopped>") for server in STARTED), STARTED
"""


def test_a_project_gets_the_fixtures_from_the_entry_point(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
