"""pytest fixtures that give a test a started :class:`~rxtweet.testing.FakeStreamServer`.

Installed with rxtweet, this module is a pytest plugin (the ``pytest11`` entry point
``rxtweet``), so its fixtures are available in every test without an import:

* ``fake_stream_server``: a started server, stopped when the test ends;
* ``fake_stream_server_options``: the keyword arguments ``fake_stream_server`` is built with
  (``{}``: an empty source, keep-alives every 20 s). Override this fixture in a test module
  or a ``conftest.py`` to give every test there the same messages, token or script default;
* ``fake_stream_server_factory``: ``factory(**options)`` starts one more server (a test that
  needs two, or options of its own); every server it started is stopped at teardown.

Example::

    import pytest
    import requests
    from rxtweet.testing import Attempt


    @pytest.fixture
    def fake_stream_server_options():
        return {"messages": [{"data": {"id": "1", "text": "hi"}}], "bearer_token": "t0ken"}


    def test_reads_one_tweet(fake_stream_server):
        fake_stream_server.script(Attempt(ending="close"))
        response = requests.get(
            fake_stream_server.url + "/2/tweets/sample/stream",
            headers={"Authorization": "Bearer t0ken"},
            stream=True,
        )
        assert [line for line in response.iter_lines() if line]

The plugin imports nothing at pytest start-up beyond this module and the server (no client
code), and it never opens a socket unless a test asks for one of its fixtures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .server import FakeStreamServer

__all__ = ["fake_stream_server", "fake_stream_server_factory", "fake_stream_server_options"]

logger = logging.getLogger(__name__)

#: What ``fake_stream_server_factory`` yields: ``factory(**options)`` -> a started server.
ServerFactory = Callable[..., FakeStreamServer]


@pytest.fixture
def fake_stream_server_options() -> dict[str, Any]:
    """The keyword arguments of :class:`FakeStreamServer` for ``fake_stream_server``.

    Returns ``{}``; override the fixture (same name) in a test module or ``conftest.py``.
    """
    return {}


@pytest.fixture
def fake_stream_server_factory() -> Iterator[ServerFactory]:
    """A function starting a :class:`FakeStreamServer` per call; all are stopped at teardown.

    Servers are stopped in the reverse order of their start, each joining its threads
    (``FakeStreamServer.stop`` is idempotent, so a test may stop one itself).
    """
    started: list[FakeStreamServer] = []

    def start(**options: Any) -> FakeStreamServer:
        server = FakeStreamServer(**options)
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()
        logger.debug("stopped %d fake stream server(s)", len(started))


@pytest.fixture
def fake_stream_server(
    fake_stream_server_factory: ServerFactory, fake_stream_server_options: dict[str, Any]
) -> FakeStreamServer:
    """A started :class:`FakeStreamServer` built with ``fake_stream_server_options``."""
    return fake_stream_server_factory(**fake_stream_server_options)
