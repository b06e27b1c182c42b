"""API v1.1 line-level operators: ``delimited=length`` framing and the fatal-disconnect guard.

Both work on the raw lines of one connection (before parsing) and are built with
:func:`~rxtweet.operators.pass_through` (errors and completion pass through, the state is per
subscription, i.e. per connection). The client gives the connection ``delimited=length`` as
its ``frame`` (it needs each line) and the guard as its ``batch_frame`` (it looks at each
line of a read, in one call per read).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import repeat
from typing import Final

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from ..connection import BatchOperator, LineOperator
from ..errors import FatalDisconnect, LengthFramingError
from ..framing import DEFAULT_MAX_LINE
from ..operators.pass_through import pass_through
from ..parse import decode
from .models import DisconnectNotice

__all__ = [
    "MAX_DELIMITED_LENGTH",
    "DelimitedStats",
    "LengthFramingError",
    "length_delimited",
]

log = logging.getLogger(__package__)

#: The longest ``delimited=length`` length accepted: the transport's default ``max_line``
#: (64 MiB) plus the CRLF. A longer one cannot frame a message rxtweet would keep.
MAX_DELIMITED_LENGTH: Final = DEFAULT_MAX_LINE + 2

#: A disconnect message is a line whose ``"disconnect"`` key starts within its first this
#: many bytes (``{"disconnect":{...}}``, with room for whitespace).
_KEY_WITHIN: Final = 24


class DelimitedStats:
    """Counters of :func:`length_delimited`: ``lengths`` (length lines consumed) and
    ``mismatches`` (a length that did not match its message, a message without a length,
    a length without a message). Each mismatch is also logged at WARNING. A length line
    that is no length at all is not a mismatch but a :class:`LengthFramingError`."""

    __slots__ = ("lengths", "mismatches")

    def __init__(self) -> None:
        self.lengths = 0
        self.mismatches = 0

    def __repr__(self) -> str:
        return f"DelimitedStats(lengths={self.lengths}, mismatches={self.mismatches})"


def length_delimited(
    stats: DelimitedStats | None = None,
) -> Callable[[Observable[bytes]], Observable[bytes]]:
    """An operator over the lines of one connection for ``delimited=length`` framing.

    X then writes each message as ``<length>\\r\\n<message>\\r\\n``, where the length counts
    the message's bytes *including* its ``\\r\\n``; keep-alive newlines may come before a
    length line. A JSON message never holds a raw newline, so the transport already splits
    this into a digits-only line and the message line. This operator consumes each length
    line, checks it against the next line (``len(line) + 2 == length``) and passes the
    message on; keep-alives pass through. A mismatch (or a message without a length, or two
    lengths in a row) is logged at WARNING and counted in ``stats``; the message is passed
    on all the same, never dropped silently. The state is per subscription, i.e. per
    connection: after a reconnect it starts afresh.

    A line that starts like a length but is none (``12a``, ``-5``, ``+5``, a number of more
    digits than any length has, or above :data:`MAX_DELIMITED_LENGTH`) means the framing is
    lost: the connection errors with :class:`LengthFramingError` (a
    :class:`~rxtweet.errors.StreamConnectionError`, so the stream reconnects) and ignores
    whatever else the dropped connection still delivers.
    """
    counters = stats if stats is not None else DelimitedStats()

    def mismatch(what: str) -> None:
        counters.mismatches += 1
        log.warning("delimited=length: %s (mismatches so far: %d)", what, counters.mismatches)

    def on_next_for(observer: abc.ObserverBase[bytes]) -> Callable[[bytes], None]:
        expected: int | None = None
        failed = False
        emit = observer.on_next

        def on_next(line: bytes) -> None:
            nonlocal expected, failed
            if failed:
                return  # the connection is being dropped: nothing more is framed
            if not line or line.isspace():
                emit(line)  # a keep-alive
                return
            if line[0] != 0x7B:  # "{": the common case skips the digit test
                digits = line.strip()
                if digits[:1] in _LENGTH_START:
                    length = _length(digits)
                    if length is None:
                        failed = True
                        observer.on_error(_framing_error(digits))
                        return
                    counters.lengths += 1
                    if expected is not None:
                        mismatch(f"a length line ({expected}) had no message")
                    expected = length
                    return
            if expected is None:
                mismatch(f"a message of {len(line) + 2} bytes had no length line")
            elif len(line) + 2 != expected:
                mismatch(f"the length line said {expected} bytes, the message has {len(line) + 2}")
            expected = None
            emit(line)

        return on_next

    return pass_through(on_next_for)


#: First bytes of a line that can only be meant as a length line.
_LENGTH_START: Final = frozenset(bytes([b]) for b in b"0123456789+-")
_MAX_LENGTH_DIGITS: Final = len(str(MAX_DELIMITED_LENGTH))


def _length(digits: bytes) -> int | None:
    """The length a length line states, or ``None`` if it is no valid length.

    Checked before ``int()``: a line of thousands of digits must not reach it (Python
    refuses to convert more than 4,300 digits, with a ``ValueError``)."""
    if len(digits) > _MAX_LENGTH_DIGITS or not digits.isdigit():  # isdigit: ASCII only
        return None
    length = int(digits)
    return length if length <= MAX_DELIMITED_LENGTH else None


def _framing_error(digits: bytes) -> LengthFramingError:
    preview = digits[:24]
    more = "..." if len(digits) > len(preview) else ""
    return LengthFramingError(
        f"delimited=length: framing lost: a length line of {len(digits)} bytes "
        f"({preview!r}{more}) is not a length from 0 to {MAX_DELIMITED_LENGTH}"
    )


def _disconnect_notice(line: bytes, codes: frozenset[int]) -> DisconnectNotice | None:
    """The notice of a disconnect message whose code is in ``codes`` (logged), else
    ``None`` (another disconnect is logged too: X closes the connection after it)."""
    if b'"disconnect"' not in line[:_KEY_WITHIN]:
        return None
    doc = decode(line)
    inner = doc.get("disconnect") if isinstance(doc, dict) else None
    if type(inner) is not dict:
        return None
    notice = DisconnectNotice(inner)
    if notice.code in codes:
        log.error(
            "X sent disconnect code %s (%s): %s. Not reconnecting: another "
            "connection with the same credentials would be thrown off, or the "
            "credentials no longer work.",
            notice.code,
            notice.meaning,
            notice.reason,
        )
        return notice
    log.info(
        "X sent disconnect code %s (%s): %s; reconnecting when it closes",
        notice.code,
        notice.meaning,
        notice.reason,
    )
    return None


def _end_on_fatal_disconnect(
    codes: frozenset[int],
) -> Callable[[Observable[bytes]], Observable[bytes]]:
    """Passes lines on; after a disconnect message whose code is in ``codes``, errors with
    :class:`FatalDisconnect` (which the reconnect policy does not retry). The message itself
    is delivered first, so the hooks and substreams see it."""

    def on_next_for(observer: abc.ObserverBase[bytes]) -> Callable[[bytes], None]:
        def on_next(line: bytes) -> None:
            observer.on_next(line)
            notice = _disconnect_notice(line, codes)
            if notice is not None:
                observer.on_error(FatalDisconnect(notice))

        return on_next

    return pass_through(on_next_for)


# bytes.find(line, b'"disconnect"', 0, _KEY_WITHIN) for each line, as map() arguments: the
# test of _disconnect_notice.
_find = bytes.find
_DISCONNECT: Final = repeat(b'"disconnect"')
_ZERO: Final = repeat(0)
_HEAD: Final = repeat(_KEY_WITHIN)


def _end_on_fatal_disconnect_batches(
    codes: frozenset[int],
) -> Callable[[Observable[list[bytes]]], Observable[list[bytes]]]:
    """:func:`_end_on_fatal_disconnect` on batches of lines: the lines are passed on up to
    each disconnect message (it included), which is then looked at; after a fatal one the
    error follows and the rest of the batch is dropped. Once the subscription is disposed
    (from inside the batch, by a subscriber) nothing more of the batch is looked at, as the
    line-at-a-time operator would never see those lines."""

    def operator(source: Observable[list[bytes]]) -> Observable[list[bytes]]:
        def subscribe(
            observer: abc.ObserverBase[list[bytes]], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            stopped = [False]

            def on_next(batch: list[bytes]) -> None:
                # A read rarely holds a disconnect message: one pass of C calls over its
                # lines says so (the loop below costs ~0.1 us a line); a line that is not
                # bytes (bytes.find refuses it) goes the loop's way.
                if batch:
                    try:
                        if len(batch) == 1:
                            # A read of one message (a stream at a low rate, where a read's
                            # cost is the latency): one C call, not map() and max() as well.
                            clear = _find(batch[0], b'"disconnect"', 0, _KEY_WITHIN) < 0
                        else:
                            clear = max(map(_find, batch, _DISCONNECT, _ZERO, _HEAD)) < 0
                    except TypeError:
                        clear = False
                    if clear:
                        observer.on_next(batch)
                        return
                start = 0
                for index, line in enumerate(batch):
                    if b'"disconnect"' not in line[:_KEY_WITHIN]:
                        continue
                    observer.on_next(batch[start : index + 1])
                    start = index + 1
                    if stopped[0]:
                        return
                    notice = _disconnect_notice(line, codes)
                    if notice is not None:
                        observer.on_error(FatalDisconnect(notice))
                        return
                if start < len(batch):
                    observer.on_next(batch[start:] if start else batch)

            def stop() -> None:
                stopped[0] = True

            subscription = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return CompositeDisposable(Disposable(stop), subscription)

        return Observable(subscribe)

    return operator


def _v1_framing(
    stats: DelimitedStats | None, fatal_codes: frozenset[int]
) -> tuple[LineOperator | None, BatchOperator | None]:
    """The v1.1 operators for one connection: on its lines (``delimited=length``, which needs
    each line) and on its batches of lines (the fatal-disconnect guard); ``None`` for none."""
    frame = length_delimited(stats) if stats is not None else None
    batch_frame = _end_on_fatal_disconnect_batches(fatal_codes) if fatal_codes else None
    return frame, batch_frame
