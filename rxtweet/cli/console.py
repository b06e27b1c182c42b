"""The terminal side of the command line: notices, a live status block, and logging.

A :class:`Console` wraps one text stream (stderr for the streaming commands, stdout for the
demo). When that stream is a terminal it keeps a *live block* — one or a few lines redrawn
in place with ANSI escapes — below the notices, which scroll above it; when it is not (a
pipe, a file, a test), the live block is never drawn and notices are plain lines. Every
write goes through one lock, so threads (the reader thread, timers, the main thread) never
interleave half lines.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import TextIO

__all__ = ["Console", "ConsoleHandler", "display_width", "fit", "printable"]

_RESET = "\x1b[0m"
_STYLES = {
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "cyan": "\x1b[36m",
}


#: What a terminal may act on instead of showing: C0 controls (ESC, BEL, CR, BS ...), DEL,
#: C1 controls (CSI U+009B, OSC U+009D ...), lone surrogates (which cannot be encoded), and
#: the bidirectional overrides and isolates that reorder what follows them on the line.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_NEWLINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` safe to print on a terminal: every control character is shown escaped.

    Text that came from the network (an HTTP reason phrase, X's problem ``detail``, a rule's
    value or tag, an exception's message) may hold escape sequences that would retitle the
    window, clear the screen or hide what follows. C0 controls, DEL, C1 controls, lone
    surrogates and bidirectional overrides become ``\\xNN`` / ``\\uNNNN``, so an escape
    sequence is shown as inert text. Everything else, including non-ASCII letters and emoji,
    is kept. With ``keep_newlines``, ``\\n`` is kept (multi-line log records, tracebacks).

    >>> printable("HTTP 503 \\x1b]0;pwned\\x07\\x1b[2J")
    'HTTP 503 \\\\x1b]0;pwned\\\\x07\\\\x1b[2J'
    >>> printable("café ☕")
    'café ☕'
    """
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or char in "\u200b\u200d\ufe0f":
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide CJK characters count 2, marks 0)."""
    return sum(_char_width(c) for c in text)


def fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns (with ``…`` when cut)."""
    if display_width(text) <= width:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        w = _char_width(char)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "…"


class Console:
    """Notices and a live block on one text stream; see the module docstring.

    Args:
        stream: where to write (``sys.stderr`` or ``sys.stdout``).
        tty: whether to draw the live block; default: ``stream.isatty()``.
        color: whether to use ANSI colours; default: on a terminal, unless ``NO_COLOR`` is
            set or ``TERM`` is ``dumb``.
    """

    def __init__(
        self, stream: TextIO, *, tty: bool | None = None, color: bool | None = None
    ) -> None:
        self.stream = stream
        if tty is None:
            isatty: Callable[[], bool] | None = getattr(stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty and os.environ.get("TERM") != "dumb"
        if color is None:
            color = self.tty and "NO_COLOR" not in os.environ
        self.color = color
        self._lock = threading.RLock()
        self._live: list[str] = []
        #: Set when a write failed (e.g. the reader of a pipe went away): nothing more is
        #: written, and the command can stop.
        self.broken = False

    def style(self, text: str, *styles: str) -> str:
        """``text`` in the given styles (``"bold"``, ``"dim"``, ``"red"`` …) when colour is on."""
        if not self.color or not styles:
            return text
        return "".join(_STYLES[s] for s in styles) + text + _RESET

    @property
    def width(self) -> int:
        """The terminal's width in columns (100 when unknown)."""
        return shutil.get_terminal_size((100, 24)).columns

    def print(self, text: str = "") -> None:
        """Write a line above the live block (which is redrawn below it)."""

        def write() -> None:
            live = self._live
            self._erase()
            self.stream.write(text + "\n")
            self._draw(live)

        self._write(write)

    def live(self, lines: Sequence[str]) -> None:
        """Replace the live block with ``lines`` (ignored when not on a terminal)."""
        if not self.tty:
            return

        def write() -> None:
            self._erase()
            self._draw(list(lines))

        self._write(write)

    def clear(self) -> None:
        """Remove the live block (before the program prints its last words)."""
        self._write(self._erase)

    def _write(self, action: Callable[[], object]) -> None:
        """Run ``action`` and flush; a failed write (a closed pipe) sets :attr:`broken`
        instead of raising: it must not become an error inside a stream's observer."""
        with self._lock:
            if self.broken:
                return
            try:
                action()
                self.stream.flush()
            except (OSError, ValueError):
                self.broken = True
                self._live = []

    def _erase(self) -> None:
        n = len(self._live)
        if n:
            up = f"\x1b[{n - 1}F" if n > 1 else "\r"
            self.stream.write(up + "\x1b[J")
        self._live = []

    def _draw(self, lines: list[str]) -> None:
        if not lines or not self.tty:
            return
        width = max(10, self.width - 1)
        # Fit the plain text, then style: escapes must not count as columns.
        self.stream.write("\n".join(fit(line, width) for line in lines))
        self._live = lines


class ConsoleHandler(logging.Handler):
    """A logging handler writing through a :class:`Console`, with secrets redacted and
    control characters escaped (a record may quote the server).

    ``quiet_loggers`` name loggers whose records below ERROR are dropped: the command line
    reports those events itself (reconnects, malformed lines), more briefly.
    """

    def __init__(
        self,
        console: Console,
        redact: Callable[[str], str],
        *,
        quiet_loggers: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.console = console
        self.redact = redact
        self.quiet_loggers = tuple(quiet_loggers)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the records of ``quiet_loggers`` below ERROR."""
        if record.levelno < logging.ERROR and any(
            record.name == name or record.name.startswith(name + ".") for name in self.quiet_loggers
        ):
            return False
        return super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        """Format, redact and print one record."""
        try:
            text = printable(self.redact(self.format(record)), keep_newlines=True)
            self.console.print(text)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)
