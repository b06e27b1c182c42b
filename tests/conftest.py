"""Make the whole suite hermetic: no test sees the caller's terminal, locale, home directory,
proxies or credentials.

The suite must give the same results in an Emacs shell (``TERM=dumb``), under ``NO_COLOR``,
in a ``LANG=C`` CI runner and on a developer's machine with real X credentials in the
environment. So, once per session, before any test runs, :func:`hermetic_environment`
removes or pins every variable the code under test (or a library it uses) reads. A test
that is *about* one of them (a terminal, colours) sets it itself, with ``monkeypatch``.

Subprocesses (the CLI, the docs' snippets, notebook kernels) inherit the same environment.

It also provides ``server``: the started :class:`~rxtweet.testing.FakeStreamServer` of the
integration tests. A module configures it by defining the ``fake_stream_server_options``
fixture (the server's keyword arguments). After the server is stopped, ``server`` asserts
that no transport reader thread outlived the test, unless the module sets
``CHECK_READER_THREADS = False`` (modules whose clients run in subprocesses or own pools).
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from delivery_harness import serve  # noqa: F401 - a fixture, for the delivery tests
from support import reader_threads, wait_until

from rxtweet.testing import FakeStreamServer

# Imported, not listed in ``pytest_plugins``: once rxtweet is installed its pytest11 entry
# point registers the plugin too, and pluggy refuses a plugin registered twice. Fixtures
# defined (or imported) here win over the plugin's, and this works before a reinstall.
from rxtweet.testing.pytest_plugin import (  # noqa: F401
    fake_stream_server_factory,
    fake_stream_server_options,
)

#: Removed: they change what the CLI's console prints (``rxtweet.cli.console`` reads ``TERM``
#: and ``NO_COLOR``; ``FORCE_COLOR``/``CLICOLOR*`` are the other colour conventions;
#: ``COLUMNS``/``LINES`` change ``shutil.get_terminal_size()``). Without them a test sees
#: "no terminal information", and a test about a terminal states the one it wants.
TERMINAL = ("TERM", "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "COLUMNS", "LINES")

#: Removed: ``requests`` sends requests to 127.0.0.1 through a proxy named here (nothing
#: bypasses loopback by default), so a developer's proxy would sit between the tests and
#: ``FakeStreamServer``.
PROXIES = tuple(
    name
    for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)

#: Removed: the CLI takes credentials from these when no flag is given; a test must never
#: pick up (or send) a real one.
CREDENTIALS = (
    "X_BEARER_TOKEN",
    "X_CONSUMER_KEY",
    "X_CONSUMER_SECRET",
    "X_ACCESS_TOKEN",
    "X_ACCESS_TOKEN_SECRET",
)

#: Removed: they would move the per-user directories away from the temporary ``HOME``
#: (Jupyter's and IPython's profiles and kernelspecs, matplotlib's configuration).
USER_DIRECTORIES = (
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_DATA_DIR",
    "JUPYTER_PATH",
    "JUPYTER_RUNTIME_DIR",
    "IPYTHONDIR",
    "MPLCONFIGDIR",
)


@pytest.fixture(scope="session", autouse=True)
def hermetic_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Pin the environment for the whole session; restore it afterwards."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        for name in TERMINAL + PROXIES + CREDENTIALS + USER_DIRECTORIES:
            patch.delenv(name, raising=False)
        # An empty home: no ~/.netrc (requests would add its credentials to requests without
        # auth), no user config for IPython, Jupyter or matplotlib.
        patch.setenv("HOME", str(home))
        # One UTF-8 locale for subprocesses (this process decided its own at start-up; Python
        # coerces the C locale to UTF-8 anyway, but other programs and libraries may not).
        patch.setenv("LANG", "C.UTF-8")
        patch.setenv("LC_ALL", "C.UTF-8")
        patch.delenv("LANGUAGE", raising=False)
        patch.delenv("PYTHONIOENCODING", raising=False)
        # Timestamps formatted in local time read the same everywhere.
        patch.setenv("TZ", "UTC")
        # Plots render without a display, in this process and in notebook kernels.
        patch.setenv("MPLBACKEND", "Agg")
        if hasattr(time, "tzset"):
            time.tzset()
        # A run started in the background of a script (`pytest &`, nohup) inherits SIGINT
        # ignored, and so would every subprocess: the Ctrl-C tests' SIGINT would do nothing.
        # With a handler here, exec gives each subprocess the default again.
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        if ignored:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        yield
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(time, "tzset"):
        time.tzset()


@pytest.fixture
def server(
    fake_stream_server_factory: Any,  # noqa: F811 - the imported fixture, requested
    fake_stream_server_options: dict[str, Any],  # noqa: F811
    request: pytest.FixtureRequest,
) -> Iterator[FakeStreamServer]:
    """A started FakeStreamServer built with the module's ``fake_stream_server_options``."""
    srv = fake_stream_server_factory(**fake_stream_server_options)
    yield srv
    srv.stop()
    if getattr(request.module, "CHECK_READER_THREADS", True):
        assert wait_until(lambda: not reader_threads()), "a reader thread outlived its test"


#: A test running longer than this is hung: every thread's stack is written to stderr and
#: the run ends, so CI fails at once with the reason instead of waiting for its timeout.
HANG_SECONDS = 120.0


@pytest.fixture(autouse=True)
def hang_watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_report_header() -> str:
    return "environment: made hermetic by tests/conftest.py (TERM, colour, locale, HOME, proxies)"
