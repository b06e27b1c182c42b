"""``--log FILE``: a command's log records also go to a file, for collections that run for days.

The file is opened for appending with :class:`logging.handlers.WatchedFileHandler`, which
reopens it when logrotate (or anyone) moves or deletes it, so no ``copytruncate`` is needed.
Records are at INFO and above (DEBUG with ``-v``), with UTC times, redacted by the command's
:class:`~rxtweet.cli.common.Redactor` and escaped as on the terminal. Unlike the terminal, the
file keeps the library's own records of reconnects and malformed lines (the terminal shows
the command line's shorter notices instead).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
import time
from collections.abc import Callable

from .common import CliError
from .console import printable

__all__ = ["LOG_FORMAT", "log_file_handler"]

log = logging.getLogger(__name__)

#: One line per record: ``2026-05-01T12:00:00.123Z INFO rxtweet.reconnect: ...``.
LOG_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"


class _RedactingFormatter(logging.Formatter):
    """Formats in UTC, then redacts and escapes the whole text (traceback included)."""

    converter = staticmethod(time.gmtime)

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return printable(self._redact(super().format(record)), keep_newlines=True)


class _LogFile(logging.handlers.WatchedFileHandler):
    """A :class:`~logging.handlers.WatchedFileHandler` whose write failures (a full disk, a
    file-size limit) never disturb the command: the first one is told once on stderr,
    without the record (logging's default dumps a traceback and the record's unredacted
    arguments for every failing record), and closing never raises. Writing is retried for
    each later record, so the log resumes once there is room again."""

    def __init__(self, path: str) -> None:
        super().__init__(path, encoding="utf-8")
        self._failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if self._failed:
            return
        self._failed = True
        error = sys.exc_info()[1]
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        with contextlib.suppress(OSError, ValueError):  # stderr itself may be gone
            sys.stderr.write(
                printable(f"rxtweet: cannot write the log file {self.baseFilename}: {reason}")
                + "\n"
            )

    def close(self) -> None:
        # The buffered tail may not flush (disk full): that was already told once.
        with contextlib.suppress(OSError):
            super().close()


def log_file_handler(
    path: str, redact: Callable[[str], str], *, verbose: bool
) -> logging.handlers.WatchedFileHandler:
    """A handler appending to ``path`` (created if missing), at INFO or DEBUG. A write that
    fails later (full disk) is reported once on stderr and never ends the command.

    Raises:
        CliError: the file cannot be opened for appending.
    """
    try:
        handler = _LogFile(path)
    except OSError as exc:
        raise CliError(f"cannot open the log file {path}: {exc.strerror or exc}") from exc
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(_RedactingFormatter(redact))
    return handler
