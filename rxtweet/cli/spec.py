"""What a command of ``rxtweet`` is: :class:`Command`, declared by the module that runs it.

Each command module owns its spec (``demo.COMMAND``, ``stream.SAMPLE`` …): its name, its
help, its arguments and the function that runs it. :func:`rxtweet.cli.build_parser` only
loops over them, so adding a command touches its own module and the list
:data:`rxtweet.cli.COMMANDS`, nothing else.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .common import Redactor
from .console import Console

__all__ = ["AddArguments", "Command", "Run"]

log = logging.getLogger(__name__)

#: Runs a parsed command; returns the exit status.
Run = Callable[[argparse.Namespace, Redactor, Console], int]

#: Adds a command's arguments to its parser. The second argument holds the shared parent
#: parsers by name (``"verbose"``, ``"auth"``, ``"bearer"``), for commands that build sub-commands.
AddArguments = Callable[[argparse.ArgumentParser, Mapping[str, argparse.ArgumentParser]], None]


@dataclass(frozen=True)
class Command:
    """One command of ``rxtweet``.

    Attributes:
        name: the word on the command line (``sample``).
        help: one line for ``rxtweet --help`` (an argparse format string: ``%%`` for ``%``);
            also the description of ``rxtweet NAME --help`` when ``description`` is ``None``.
        run: what the command does.
        add_arguments: adds its options to its parser.
        description: the text of ``rxtweet NAME --help`` (shown as written).
        epilog: the end of ``rxtweet NAME --help`` (examples).
        parents: names of the shared parent parsers whose options the command takes, e.g.
            ``("auth",)`` for the credential flags and ``--base-url``, ``("bearer",)`` for
            only ``--bearer-token`` and ``--base-url`` (API v2 only); every command takes
            ``-v/--verbose``.
    """

    name: str
    help: str
    run: Run
    add_arguments: AddArguments
    description: str | None = None
    epilog: str | None = None
    parents: tuple[str, ...] = ()
