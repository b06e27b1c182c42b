"""Lines of a stream body -> messages. Knows no model: each API version passes its ``convert``.

The pieces, from the bottom up:

* :func:`decode` turns one line (``bytes``, without its line terminator) into a JSON object
  (``dict``) or a :class:`~rxtweet.events.MalformedMessage` saying why it could not. It never
  raises because of its input. Shared by the v2 and v1.1 clients.
* :func:`parse_lines` is one fused operator: ``Observable[bytes]`` in; out of it
  ``KeepAlive`` for an empty line, ``MalformedMessage`` (logged at WARNING and counted) for a
  bad one, and ``convert(doc)`` for every other line. Bad input never ends the stream.
  The v2 client passes :func:`rxtweet.v2.convert.to_stream_response` (that is
  :func:`rxtweet.v2.convert.parse_v2`); the v1.1 client its own ``convert``.

``to_stream_response``, ``process_includes``, ``to_response``, ``is_v2_data`` and
``parse_v2`` moved to :mod:`rxtweet.v2.convert`; they stay importable from here.

**Big integers.** orjson does *not* fail on an integer literal beyond 64 bits: it silently
returns a ``float`` (orjson 3.13: ``18446744073709551616`` -> ``1.8446744073709552e19``).
So, with ``exact_ints=True`` (the default), :func:`decode` first looks for such a literal
(a run of 20 digits, or ``-`` and 19 digits, anywhere in the line) and decodes those rare
lines with :func:`json.loads`, which keeps every integer exact. The scan costs about
0.9 ns per byte (~3.5 us on a 3.8 KB tweet, against ~9 us for orjson itself); pass
``exact_ints=False`` to skip it where no such literal can occur (the X API sends ids as
strings of at most 19 digits, and numeric ids below 2**63). The :func:`json.loads` path is
also the fallback wherever orjson is stricter than the standard library, e.g. a lone UTF-16
surrogate escape (``"\\ud83d"``), which truncated tweet texts are known to contain.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Literal,
    NamedTuple,
    Protocol,
    TypeVar,
    overload,
)

import orjson
from reactivex import Observable, abc

from .events import KeepAlive, MalformedMessage, StreamEvent
from .operators.pass_through import pass_through
from .operators.share import multicast_of

if TYPE_CHECKING:
    # Re-exported lazily (see __getattr__): rxtweet.v2 imports this module.
    from .v2.convert import is_v2_data, parse_v2, process_includes, to_response, to_stream_response

__all__ = [
    "REASON_CONVERT",
    "REASON_EMPTY",
    "REASON_NOT_JSON",
    "REASON_NOT_OBJECT",
    "REASON_NOT_UTF8",
    "REASON_TRAILING",
    "REASON_TRUNCATED",
    "ParseStats",
    "Parsed",
    "decode",
    "is_v2_data",
    "parse_lines",
    "parse_v2",
    "process_includes",
    "to_response",
    "to_stream_response",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Reasons carried by :class:`~rxtweet.events.MalformedMessage` (and keys of
#: :attr:`ParseStats.by_reason`).
REASON_NOT_UTF8: Final = "not UTF-8"
REASON_NOT_JSON: Final = "not JSON"
REASON_NOT_OBJECT: Final = "not a JSON object"
REASON_TRUNCATED: Final = "truncated JSON"
REASON_TRAILING: Final = "data after the JSON value"
REASON_EMPTY: Final = "empty line"
#: The line was a JSON object, but ``convert`` could not make a message of it.
REASON_CONVERT: Final = "unexpected message shape"

#: How much of a bad line goes into the log.
PREVIEW_BYTES: Final = 120

_KEEP_ALIVE: Final = KeepAlive()

# Maps digits and "-" to b"0" and every other byte to b" ": an integer literal that orjson
# would turn into a float (>= 2**64 has 20 digits; < -2**63 is "-" and 19 digits) becomes a
# run of 20 b"0"s. Other runs (a long number inside a string, digits after a "-" in a URL)
# only send the line down the exact (slower, still correct) path.
_DIGIT_TABLE: Final = bytes(0x30 if (0x30 <= b <= 0x39 or b == 0x2D) else 0x20 for b in range(256))
_BIG_INT: Final = b"0" * 20
_orjson_loads: Final = orjson.loads


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads_exact(line: bytes) -> dict[str, Any] | MalformedMessage:
    """The slow path: the standard library keeps big integers exact and explains errors."""
    cut_in_a_character = False
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or exc.end != len(line):
            return MalformedMessage(line, REASON_NOT_UTF8)
        # Cut inside a multi-byte character: judge the complete part.
        cut_in_a_character = True
        try:
            text = line[: exc.start].decode("utf-8")
        except UnicodeDecodeError:
            return MalformedMessage(line, REASON_NOT_UTF8)
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return MalformedMessage(line, _explain(exc, text))
    except (ValueError, RecursionError):
        # NaN/Infinity, an integer of more than 4300 digits, or absurd nesting.
        return MalformedMessage(line, REASON_NOT_JSON)
    if cut_in_a_character:  # the complete part parsed, so the extra bytes trail it
        return MalformedMessage(line, REASON_NOT_UTF8)
    if type(doc) is not dict:
        return MalformedMessage(line, REASON_NOT_OBJECT)
    return doc


# What may be left at the point where a cut line stops parsing: part of a literal, of a
# number ("-", "1.", "1e+") or of a \uXXXX escape.
_PARTIAL_TOKEN: Final = re.compile(r"t(?:ru?)?|f(?:a(?:ls?)?)?|n(?:ul?)?|-|\.|[eE][+-]?")
_PARTIAL_ESCAPE: Final = re.compile(r"u[0-9a-fA-F]{0,4}")


def _explain(exc: json.JSONDecodeError, text: str) -> str:
    """Tell a cut-short document (``"truncated JSON"``) from other invalid JSON."""
    msg = exc.msg
    if msg.startswith("Extra data"):
        return REASON_TRAILING
    if msg.startswith("Unterminated string"):
        return REASON_TRUNCATED
    rest = text[exc.pos :].rstrip()
    if not rest:
        return REASON_TRUNCATED
    partial = _PARTIAL_ESCAPE if msg.startswith("Invalid \\uXXXX") else _PARTIAL_TOKEN
    if partial.fullmatch(rest):
        return REASON_TRUNCATED
    return REASON_NOT_JSON


def decode(line: bytes, *, exact_ints: bool = True) -> dict[str, Any] | MalformedMessage:
    """Decode one line into a JSON object, or say why not. Never raises for bad input.

    Leading and trailing whitespace (a stray ``\\r``, a trailing space) is ignored. The
    reasons are the ``REASON_*`` constants: ``"not UTF-8"``, ``"not JSON"``,
    ``"truncated JSON"`` (valid so far but cut short, e.g. the last line of a dropped
    connection), ``"data after the JSON value"`` (e.g. two messages glued together),
    ``"not a JSON object"`` (``[1,2]``, ``"str"``, ``null``) and ``"empty line"``.
    With ``exact_ints`` (default) integers of any size are exact; without, an integer
    literal beyond 64 bits becomes a ``float`` (orjson's behaviour).
    """
    if exact_ints and line.translate(_DIGIT_TABLE).find(_BIG_INT) >= 0:
        return _loads_exact(line)
    try:
        doc = _orjson_loads(line)
    except orjson.JSONDecodeError:
        if not line.strip():
            return MalformedMessage(line, REASON_EMPTY)
        return _loads_exact(line)
    if type(doc) is not dict:
        return MalformedMessage(line, REASON_NOT_OBJECT)
    return doc


# -- the operator -----------------------------------------------------------------------


class Parsed(NamedTuple, Generic[T]):
    """A converted message together with the line it came from (``parse_lines(keep_raw=True)``).

    ``value`` is ``convert(doc)``; ``raw`` is the line (``bytes``), e.g. for tweepy's
    ``on_data(raw_data)`` hook. Test with ``type(item) is Parsed`` (it is never subclassed).
    A named pair (``value, raw = item`` works): built by C code, on the hot path, where a
    class with ``__init__`` would cost a Python call per message. Equal only to another
    ``Parsed`` with equal parts.
    """

    value: T
    raw: bytes

    def __eq__(self, other: object) -> bool:
        if type(other) is Parsed:
            return bool(self.value == other.value and self.raw == other.raw)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"Parsed({self.value!r}, <{len(self.raw)} bytes>)"


#: ``Parsed(value, raw)`` without the named tuple's Python-level ``__new__``.
_new_tuple: Final = tuple.__new__


class ParseStats:
    """Counters kept by :func:`parse_lines` (and, for ``too_long``, the transport).

    ``messages`` (lines converted and emitted), ``keep_alives``, ``malformed`` and
    ``by_reason`` (malformed count per reason), and ``too_long``: lines longer than the
    transport's ``max_line``, dropped before parsing (so not in ``malformed``; a
    :class:`~rxtweet.connection.Connection` counts them), and ``overflowed``: items a bounded
    hand-off of the stream object (``stream.observe_on_bounded(...)``) dropped for a slow
    consumer (after parsing, so they are in ``messages`` too). A stream's operator updates
    them from the one thread that delivers its lines; reading them from any other thread is
    safe (plain ints and a dict, under the GIL), and :meth:`snapshot` copies them together.
    The malformed and overflow paths take a lock, so one instance may be shared by several
    streams; the counts of messages and keep-alives do not (they are the hot path), so with
    several streams on several threads ``messages`` and ``keep_alives`` may, rarely, miss an
    increment. ``messages`` is added once per read (the lines of one socket read, see
    :func:`batch_parser`), after the read's items were delivered: read from a subscriber's
    ``on_next`` it may lag by the read being delivered; the other counters are per line.
    """

    __slots__ = (
        "_lock",
        "by_reason",
        "keep_alives",
        "malformed",
        "messages",
        "overflowed",
        "too_long",
    )

    def __init__(self) -> None:
        self.messages = 0
        self.keep_alives = 0
        self.malformed = 0
        self.by_reason: dict[str, int] = {}
        self.too_long = 0
        self.overflowed = 0
        self._lock = threading.Lock()

    def _count_malformed(self, reason: str) -> None:
        with self._lock:
            self.malformed += 1
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1

    def _count_too_long(self, size: int) -> None:
        """A line of ``size`` bytes exceeded ``max_line``; the transport dropped and logged it."""
        with self._lock:
            self.too_long += 1

    def _count_overflow(self, _total: int = 0) -> None:
        """A bounded hand-off dropped one item (an ``on_overflow`` callback: the argument,
        that hand-off's own running total, is not needed here)."""
        with self._lock:
            self.overflowed += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"messages", "keep_alives", "malformed", "by_reason", "too_long",
        "overflowed"}``, copied under the lock."""
        with self._lock:
            return {
                "messages": self.messages,
                "keep_alives": self.keep_alives,
                "malformed": self.malformed,
                "by_reason": dict(self.by_reason),
                "too_long": self.too_long,
                "overflowed": self.overflowed,
            }

    def __repr__(self) -> str:
        return (
            f"ParseStats(messages={self.messages}, keep_alives={self.keep_alives}, "
            f"malformed={self.malformed}, by_reason={self.by_reason!r}, "
            f"too_long={self.too_long}, overflowed={self.overflowed})"
        )


def _report(bad: MalformedMessage, stats: ParseStats | None, detail: str = "") -> None:
    raw = bad.raw
    log.warning(
        "malformed message (%s%s), %d bytes: %r%s",
        bad.reason,
        detail,
        len(raw),
        raw[:PREVIEW_BYTES],
        "..." if len(raw) > PREVIEW_BYTES else "",
    )
    if stats is not None:
        stats._count_malformed(bad.reason)


@overload
def parse_lines(
    convert: Callable[[dict[str, Any]], T],
    stats: ParseStats | None = None,
    *,
    keep_raw: Literal[False] = False,
    exact_ints: bool = True,
) -> Callable[[Observable[bytes]], Observable[T | StreamEvent]]: ...


@overload
def parse_lines(
    convert: Callable[[dict[str, Any]], T],
    stats: ParseStats | None = None,
    *,
    keep_raw: Literal[True],
    exact_ints: bool = True,
) -> Callable[[Observable[bytes]], Observable[Parsed[T] | StreamEvent]]: ...


def parse_lines(
    convert: Callable[[dict[str, Any]], T],
    stats: ParseStats | None = None,
    *,
    keep_raw: bool = False,
    exact_ints: bool = True,
) -> Callable[[Observable[bytes]], Observable[Any]]:
    """An operator: lines (``bytes`` without terminator) -> messages and events.

    * an empty or all-whitespace line -> :class:`~rxtweet.events.KeepAlive`;
    * a line that :func:`decode` rejects, or whose object ``convert`` rejects (any
      ``Exception``; reason ``"unexpected message shape"``) ->
      :class:`~rxtweet.events.MalformedMessage`, logged at WARNING on ``rxtweet.parse``
      with a preview of at most 120 bytes, and counted in ``stats``;
    * anything else -> ``convert(doc)``, or ``Parsed(convert(doc), line)`` with
      ``keep_raw=True``.

    ``exact_ints`` is passed to :func:`decode`. Bad input never ends the stream. Errors and
    completion of the source pass through; an exception raised by a downstream observer is
    not caught here. One operator, not a chain: each line costs one ``on_next`` call.
    """
    return pass_through(parse_on_next_for(convert, stats, keep_raw=keep_raw, exact_ints=exact_ints))


def parse_on_next_for(
    convert: Callable[[dict[str, Any]], Any],
    stats: ParseStats | None = None,
    *,
    keep_raw: bool = False,
    exact_ints: bool = True,
) -> Callable[[abc.ObserverBase[Any]], Callable[[bytes], None]]:
    """What :func:`parse_lines` does to each line, as ``on_next_for`` of
    :func:`~rxtweet.operators.pass_through`: ``on_next_for(observer)`` is the ``on_next``
    that parses a line and gives the result to ``observer.on_next`` (only that: errors and
    completion are the caller's to pass on).

    For a subscriber that parses the lines itself without one more hop per line: subscribed
    to the lines, the result behaves exactly as ``parse_lines`` subscribed with the same
    ``observer``. It is :func:`batch_parser` given one line at a time.
    """
    parse = batch_parser(convert, stats, keep_raw=keep_raw, exact_ints=exact_ints)
    never: list[bool] = [False]

    def on_next_for(observer: abc.ObserverBase[Any]) -> Callable[[bytes], None]:
        emit = observer.on_next

        def on_next(line: bytes) -> None:
            parse((line,), emit, never)

        return on_next

    return on_next_for


class ReadTally:
    """What the parser tells the taps of a read (see :func:`batch_parser`).

    Given ``data_of`` (a fast callable, e.g. ``operator.attrgetter("data")``) and
    ``on_other``, the parser counts the read's lines ``parsed`` (fewer than the read's when
    a disposal or a subscriber's exception stopped it), the messages ``converted`` and
    those ``without_data`` (``data_of(value) is None``), lists in ``skipped`` the positions
    of the lines that are no message with data (keep-alives, malformed lines, messages
    without data), and hands ``on_other`` each of those items once it was emitted. Nothing
    is kept of the messages with data: holding a read's items until its end would cost
    more than counting them (their memory could not be reused message by message)."""

    __slots__ = ("converted", "data_of", "on_other", "parsed", "skipped", "without_data")

    def __init__(
        self, data_of: Callable[[Any], Any] | None, on_other: Callable[[Any], None]
    ) -> None:
        self.data_of = data_of
        self.on_other = on_other
        self.converted = 0
        self.without_data = 0
        self.parsed = 0
        self.skipped: list[int] = []


def _projections_of(convert: Callable[[dict[str, Any]], Any]) -> dict[int, Any]:
    """``convert.projections``, ``(convert, {pick: make})`` where ``make(doc)`` is
    ``pick(convert(doc))`` with the same errors (v2's tweets:
    :data:`rxtweet.v2.convert.PROJECTIONS`), keyed by the pick's identity; ``{}`` for any
    other ``convert`` (one that wraps it, copying its attributes, or a mock)."""
    try:
        owned = convert.projections  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - none, or an odd one: no projection
        return {}
    if type(owned) is not tuple or len(owned) != 2 or owned[0] is not convert:
        return {}
    table = owned[1]
    if type(table) is not dict:
        return {}
    return {id(pick): make for pick, make in table.items() if callable(make)}


#: ``share`` of a :class:`BatchParser` call not given: the parser finds it (a Python call).
LOOKUP: Final[Any] = object()


class BatchParser(Protocol):
    """What :func:`batch_parser` returns."""

    def __call__(
        self,
        lines: Sequence[bytes],
        emit: Callable[[Any], None],
        stopped: list[bool],
        tally: ReadTally | None = None,
        share: Any = LOOKUP,
    ) -> None: ...


def batch_parser(
    convert: Callable[[dict[str, Any]], Any],
    stats: ParseStats | None = None,
    *,
    keep_raw: bool = False,
    exact_ints: bool = True,
) -> BatchParser:
    """``parse(lines, emit, stopped, tally=None, share=LOOKUP)``: what :func:`parse_lines`
    does to each line, for a batch of them (one read's lines, in order), with ``emit(item)``
    called per item; a :class:`ReadTally`, when given, is filled in for the taps of the read.

    ``stopped`` is a one-element list: once ``stopped[0]`` is true (a disposal, from any
    thread, or from ``emit`` itself), no further line of the batch is parsed or emitted,
    just as no item reaches a disposed subscriber of :func:`parse_lines`. An exception
    raised by ``emit`` propagates at once; the rest of the batch is not parsed.
    ``stats.messages`` is counted per batch (it may lag a batch behind a reader on another
    thread); the other counters per line.

    The per-line operator and the batch path are one code path (:func:`parse_on_next_for`
    calls this with one line), so they cannot give different results.

    When ``emit`` is a share's own ``on_next`` (a :class:`~rxtweet.connection.Connection`'s
    subscribers) and every subscriber only selects from messages (``stream.tweets`` and the
    like: :data:`~rxtweet.operators.share.ValueCalls`), a message is delivered to them
    here, as the share would, without making its ``Parsed``: the same items, order, thread
    and errors, two Python calls and three temporary tuples less per message. When that is
    one subscriber whose pick ``convert`` can make straight from the message
    (``convert.projections``: v2's ``tweets``), it is made so. A caller that calls with the
    same ``emit`` read after read may pass its share once found (``multicast_of(emit)``,
    or ``None`` for none) as ``share``, which saves the parser a call per read; the parser
    keeps no reference to any ``emit``.
    """
    loads, table, big_int = _orjson_loads, _DIGIT_TABLE, _BIG_INT
    new_tuple = _new_tuple
    projections = _projections_of(convert)

    def parse(
        lines: Sequence[bytes],
        emit: Callable[[Any], None],
        stopped: list[bool],
        tally: ReadTally | None = None,
        share: Any = LOOKUP,
    ) -> None:
        converted = without_data = others = 0
        data_of = other = skipped = None
        if tally is not None:
            data_of, other, skipped = tally.data_of, tally.on_other, tally.skipped
        # The share emit belongs to, if its subscribers may be given a message's value.
        if share is LOOKUP:
            share = multicast_of(emit) if keep_raw and tally is None else None
        # What the share's subscribers take from a message's value (see below), worked out
        # again only when its value_calls change: the projection and its one subscriber's
        # guard and call, or the (pick, guard, call) of each subscriber, or neither.
        known_calls: Any = None
        project: Callable[[dict[str, Any]], Any] | None = None
        guard: Any = None
        call: Any = None
        values: Any = None
        try:
            for line in lines:
                if stopped[0]:
                    return
                # decode(line), inlined (one call less per line); a line of whitespace is a
                # keep-alive, asked only when orjson refuses it. A line orjson refused goes
                # to the exact path, which explains why (as decode does, without parsing it
                # with orjson a second time).
                if not line:
                    doc: Any = _KEEP_ALIVE
                elif exact_ints and line.translate(table).find(big_int) >= 0:
                    doc = _loads_exact(line)
                else:
                    try:
                        doc = loads(line)
                    except orjson.JSONDecodeError:
                        doc = _KEEP_ALIVE if line.isspace() else _loads_exact(line)
                if doc is _KEEP_ALIVE:
                    if stats is not None:
                        stats.keep_alives += 1
                    emit(_KEEP_ALIVE)
                    if other is not None:
                        skipped.append(converted + others)  # type: ignore[union-attr]
                        other(_KEEP_ALIVE)
                    others += 1
                    continue
                if type(doc) is dict:
                    # What the share's subscribers may be given from the value alone (see
                    # below): read per message, as subscribers come and go. One whose pick
                    # the converter can make straight from the message gets it made so.
                    calls = share.value_calls if share is not None else None
                    if calls is not known_calls:  # subscribers came or went (rarely)
                        known_calls = calls
                        project = values = None
                        if calls is not None and calls[0] is Parsed:
                            values = calls[1]
                            if projections and len(values) == 1:
                                project = projections.get(id(values[0][0]))
                                _, guard, call = values[0]
                    try:
                        item: Any = convert(doc) if project is None else project(doc)
                    except Exception as exc:  # noqa: BLE001 - any failure = bad shape
                        item = MalformedMessage(line, REASON_CONVERT)
                        _report(item, stats, f": {type(exc).__name__}: {exc}"[:200])
                    else:
                        converted += 1
                        if data_of is not None and data_of(item) is None:
                            without_data += 1
                            if keep_raw:
                                item = new_tuple(Parsed, (item, line))
                            emit(item)
                            skipped.append(converted - 1 + others)  # type: ignore[union-attr]
                            other(item)  # type: ignore[misc]
                            continue
                        # The share's own delivery (see _Multicast.on_next), from the value.
                        if project is not None:  # item is the one subscriber's pick
                            if item is not None and (guard is None or not guard.is_stopped):
                                call(item)
                            continue
                        if values is not None:
                            for pick, each_guard, each_call in values:
                                picked = item if pick is None else pick(item)
                                if picked is not None and (
                                    each_guard is None or not each_guard.is_stopped
                                ):
                                    each_call(picked)
                            continue
                        if keep_raw:
                            item = new_tuple(Parsed, (item, line))
                        emit(item)
                        continue
                else:
                    # Not an object (orjson's list, string, number or null), or what the
                    # exact path made of a line orjson refused.
                    item = (
                        doc
                        if type(doc) is MalformedMessage
                        else MalformedMessage(line, REASON_NOT_OBJECT)
                    )
                    _report(item, stats)
                # A malformed line.
                emit(item)
                if other is not None:
                    skipped.append(converted + others)  # type: ignore[union-attr]
                    other(item)
                others += 1
        finally:
            if stats is not None and converted:
                stats.messages += converted
            if tally is not None:
                tally.converted += converted
                tally.without_data += without_data
                tally.parsed += converted + others

    return parse


#: Names that moved to rxtweet.v2.convert, still importable from here.
_MOVED_TO_V2: Final = frozenset(
    {"is_v2_data", "parse_v2", "process_includes", "to_response", "to_stream_response"}
)


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): importing rxtweet.v2 here would be a cycle (v2 -> connection -> parse).
    if name in _MOVED_TO_V2:
        from .v2 import convert

        return getattr(convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
