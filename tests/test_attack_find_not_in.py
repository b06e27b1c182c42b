"""Hostile review of the ``find`` for ``in`` change on the per-read hot path.

The change: ``b"\\n" not in line`` / ``b"\\n" in b"".join(lines)`` in
:class:`rxtweet.framing.ChunkedDecoder` (the one-chunk read of ``feed_lines`` and
``_whole_chunks``), and ``big in line.translate(table)`` in :func:`rxtweet.parse.decode` and
:func:`rxtweet.parse.batch_parser`, became ``x.find(...) < 0`` / ``>= 0`` (CPython 3.11's
``bytes.__contains__`` tries its argument as an integer first, raising and clearing a
formatted TypeError per call).

The pre-change code (commit HEAD before the change) is inlined below as the reference,
verbatim but for its docstrings and names (``_old_*``, :class:`OldChunkedDecoder`). Each
hypothesis test feeds both the same input (reads split anywhere, bare LFs, CR-only line ends,
keep-alives, the last chunk, bytes / bytearray / bytes-subclass inputs, 19-22 digit runs,
``-`` and 19 digits, ``exact_ints`` on and off) and requires the same lines or items, the
same exception type and message, the same decoder and splitter state, the same log records,
the same stats and the same choice of the exact (``json``) path. One test runs through a
real server on 127.0.0.1, one message per chunk per read, a bare LF inside chunks.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import pairwise
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import (
    RawServer,
    chunk,
    collect,
    get,
    log_records,
    raw_servers,
    reader_threads,
    wait_until,
)

from rxtweet import parse as parse_module
from rxtweet.events import KeepAlive, MalformedMessage
from rxtweet.framing import (
    _SIZE_FIELDS,
    DEFAULT_MAX_LINE,
    WHOLE_CHUNKS_MAX,
    WHOLE_CHUNKS_MIN_READ,
    ChunkedDecoder,
    LineSplitter,
    _sizes_match,
)
from rxtweet.operators.share import multicast_of
from rxtweet.parse import (
    _BIG_INT,
    _DIGIT_TABLE,
    _KEEP_ALIVE,
    LOOKUP,
    REASON_CONVERT,
    REASON_EMPTY,
    REASON_NOT_OBJECT,
    BatchParser,
    Parsed,
    ParseStats,
    ReadTally,
    _new_tuple,
    _orjson_loads,
    _projections_of,
    _report,
    batch_parser,
    decode,
    parse_lines,
)
from rxtweet.transport import lines as transport_lines

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the reference: the pre-change code ------------------------------------------------------

_real_loads_exact = parse_module._loads_exact
#: The lines the reference sent down the exact (json) path, in order.
OLD_EXACT: list[bytes] = []


def _loads_exact(line: bytes) -> dict[str, Any] | MalformedMessage:
    """The library's slow path, for the reference, its calls recorded in OLD_EXACT."""
    OLD_EXACT.append(bytes(line))
    return _real_loads_exact(line)


def _old_decode(line: bytes, *, exact_ints: bool = True) -> dict[str, Any] | MalformedMessage:
    if exact_ints and _BIG_INT in line.translate(_DIGIT_TABLE):
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


def _old_batch_parser(
    convert: Callable[[dict[str, Any]], Any],
    stats: ParseStats | None = None,
    *,
    keep_raw: bool = False,
    exact_ints: bool = True,
) -> BatchParser:
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
                if not line or line.isspace():
                    if stats is not None:
                        stats.keep_alives += 1
                    emit(_KEEP_ALIVE)
                    if other is not None:
                        skipped.append(converted + others)  # type: ignore[union-attr]
                        other(_KEEP_ALIVE)
                    others += 1
                    continue
                # decode(line), with its common case inlined (one call less per line)
                if exact_ints and big_int in line.translate(table):
                    doc: Any = _loads_exact(line)
                else:
                    try:
                        doc = loads(line)
                    except orjson.JSONDecodeError:
                        doc = _old_decode(line, exact_ints=False)
                    else:
                        if type(doc) is not dict:
                            doc = MalformedMessage(line, REASON_NOT_OBJECT)
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
                    except Exception as exc:  # any failure = bad shape
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
                    item = doc
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


class OldChunkedDecoder(ChunkedDecoder):
    """ChunkedDecoder with the pre-change feed_lines and _whole_chunks."""

    __slots__ = ()

    def feed_lines(self, data: bytes, splitter: LineSplitter) -> list[bytes]:
        out: list[bytes] = []
        size = len(data)
        # Up to the first chunk boundary chunk by chunk (the end of a chunk the last read
        # cut); then, where lines are short, the whole chunks at once, unless a line spread
        # over chunks is pending; the rest chunk by chunk.
        if self._buf or self._left or self._need_crlf or self.done:
            data, pos = self._decode(data, out, splitter, to_boundary=True)
        else:
            # At a boundary (the common case). A read of exactly one chunk that holds one
            # line and its CRLF, as X frames a message, is the read of a stream at a low
            # rate, where a read's cost is the latency: taken here, without the loop's
            # call, when the size is written as X writes it (see _whole_chunks). A CRLF
            # or LF inside means several chunks or lines: the loop decides.
            nl = data.find(b"\r\n")
            line = data[nl + 2 : -4]
            length = len(line)
            if (
                0 < nl <= 8
                and size == nl + length + 6  # the size line, the line, two CRLFs
                and length + 2 <= splitter.max_line
                and data.endswith(b"\r\n\r\n")
                and data[:nl] == (_SIZE_FIELDS[length] if length < 4096 else b"%x" % (length + 2))
                and b"\n" not in line
                and not splitter._parts
                and not splitter._overflow
            ):
                self._short_lines = size <= WHOLE_CHUNKS_MAX
                return [line]
            pos = 0
        if (
            len(data) - pos >= WHOLE_CHUNKS_MIN_READ
            and self._short_lines
            and not splitter._parts
            and not splitter._overflow
        ):
            data, pos = self._whole_chunks(data[pos:] if pos else data, out, splitter.max_line), 0
        if data:
            self._decode(data, out, splitter, start=pos)
        if out:
            self._short_lines = size <= WHOLE_CHUNKS_MAX * len(out)
        return out

    def _whole_chunks(self, data: bytes, out: list[bytes], max_line: int) -> bytes:
        parts = data.split(b"\r\n")
        whole = (len(parts) - 1) // 3
        if not whole:
            return data
        stop = 3 * whole
        sizes = parts[0:stop:3]
        lines = parts[1:stop:3]
        lengths = list(map(len, lines))
        if (
            any(parts[2:stop:3])  # a chunk's payload is not one line and its CRLF
            or b"\n" in b"".join(lines)  # a bare LF ends a line too (memchr, not count)
            or max(lengths) > max_line
        ):
            return data
        # Each size must be len(L) + 2: compared as bytes with the size fields X writes
        # (lowercase hex, no leading zero), one C call a line; any other spelling is
        # decided by int(), the slower way.
        try:
            canonical = list(map(_SIZE_FIELDS.__getitem__, lengths)) == sizes
        except IndexError:  # a line longer than the table
            canonical = False
        if not canonical and not _sizes_match(sizes, lengths):
            return data
        out.extend(lines)
        # What follows the last whole chunk: the parts after it, with the CRLFs between them.
        return b"\r\n".join(parts[stop:])


# --- comparing outcomes ------------------------------------------------------------------------


class ByteSub(bytes):
    """A bytes subclass whose containment and find lie: the code must never consult them
    (slices and translations of a subclass are plain bytes). orjson refuses a subclass, so
    ``decode`` takes the exact path for one, before the change and after."""

    def __contains__(self, item: object) -> bool:
        return True

    def find(self, *args: Any) -> int:  # type: ignore[override]
        return 0


class ByteArraySub(bytearray):
    """The same, for bytearray."""

    def __contains__(self, item: object) -> bool:
        return True

    def find(self, *args: Any) -> int:  # type: ignore[override]
        return 0


CONTAINERS: list[Callable[[bytes], Any]] = [bytes, bytearray, ByteSub, ByteArraySub]


def canon(value: Any) -> Any:
    """``value`` in a form where equal means the same types too (``1 != 1.0`` here)."""
    if type(value) is dict:
        return ("dict", tuple((key, canon(item)) for key, item in value.items()))
    if type(value) is list:
        return ("list", tuple(map(canon, value)))
    if type(value) is Parsed:
        return ("Parsed", canon(value.value), canon(value.raw))
    if type(value) is MalformedMessage:
        return ("bad", value.reason, canon(value.raw))
    if isinstance(value, (bytes, bytearray)):
        return (type(value).__name__, bytes(value))
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, repr(value))


def outcome(call: Callable[[], Any]) -> Any:
    """``("ok", canon(result))`` or ``("raised", type, message)``."""
    try:
        return ("ok", canon(call()))
    except Exception as exc:  # an exception is an outcome to compare
        return ("raised", type(exc), str(exc))


def records(name: str) -> AbstractContextManager[list[tuple[int, str]]]:
    """The (level, message) of each record logged on ``name`` inside the block."""
    return log_records(name, lambda record: (record.levelno, record.getMessage()))


@contextmanager
def new_exact() -> Iterator[list[bytes]]:
    """The lines the library (the changed code) sends down the exact path in the block."""
    got: list[bytes] = []

    def recording(line: bytes) -> Any:
        got.append(bytes(line))
        return _real_loads_exact(line)

    with mock.patch.object(parse_module, "_loads_exact", recording):
        yield got


# --- 1. framing: ChunkedDecoder.feed_lines and _whole_chunks ------------------------------------

LINE_BYTES = st.lists(
    st.sampled_from([b"a", b"{", b"}", b"0", b"\n", b"\r", b"\r\n", b" ", b"\xff", b'"']),
    max_size=10,
).map(b"".join)
PAD = st.sampled_from([0, 0, 0, 30, 300, 1030, 2100])
padded = st.builds(lambda line, pad: b"p" * pad + line, LINE_BYTES, PAD)


def _payloads() -> st.SearchStrategy[bytes]:
    clean = padded.map(lambda line: line.replace(b"\n", b"").replace(b"\r", b""))
    return st.one_of(
        clean.map(lambda line: line + b"\r\n"),  # X's framing
        clean.map(lambda line: line + b"\r\n"),
        st.builds(lambda a, b: a + b"\n" + b + b"\r\n", clean, clean),  # a bare LF inside
        st.builds(lambda a: b"\n" + a + b"\r\n", clean),  # ... first
        st.builds(lambda a: a + b"\n\r\n", clean),  # ... last, before the CRLF
        clean.map(lambda line: line + b"\n"),  # a bare LF line end
        clean.map(lambda line: line + b"\r"),  # CR only: the line goes on
        st.just(b"\r\n"),  # a keep-alive
        st.builds(lambda a, b: a + b"\r\n" + b + b"\r\n", clean, clean),  # two lines
        padded,  # anything: part of a line, CRs and LFs anywhere, or nothing (the last chunk)
    )


def _framed(payload: bytes, spelling: str) -> bytes:
    size = len(payload)
    field = {
        "x": b"%x" % size,
        "X": b"%X" % size,
        "0": b"0%x" % size,
        "ext": b"%x;e=1" % size,
        "lie": b"%x" % (size + 1),
        "lie-": b"%x" % max(size - 1, 0),
    }[spelling]
    return field + b"\r\n" + payload + b"\r\n"


def _x_line(i: int, size: int) -> bytes:
    return b'{"m":%d,"q":"%s"}' % (i, b"q" * size)


def _x_chunks(count: int, size: int) -> list[bytes]:
    """``count`` chunks framed as X frames a message, a JSON line of ``size`` + ~16 bytes each."""
    return [chunk(_x_line(i, size) + b"\r\n") for i in range(count)]


SPELLING = st.sampled_from(["x", "x", "x", "x", "X", "0", "ext", "lie", "lie-"])
ANY_CHUNK = st.builds(_framed, _payloads(), SPELLING)
X_RUN = st.sampled_from([0, 12, 25]).map(lambda n: b"".join(_x_chunks(n, 80)))
UNIT = st.one_of(
    ANY_CHUNK,
    ANY_CHUNK,
    st.sampled_from([b"zz\r\n", b"\r\n", b"5\r\nabcdeXY", b"0x5\r\nabc\r\n"]),  # not HTTP
    # X's chunks around one of any kind: with "each chunk" reads, one read of whole chunks
    X_RUN.flatmap(lambda a: st.builds(lambda unit, b: a + unit + b, ANY_CHUNK, X_RUN)),
)
END = st.sampled_from([b"", b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n", b"0\r\n\r\n7\r\nafter\r\n"])
READS = st.tuples(
    st.sampled_from(["each chunk", "groups", "anywhere"]),
    st.lists(st.booleans(), min_size=16, max_size=16),
    st.lists(st.integers(0, 10**6), max_size=5),
)
MAX_LINE = st.sampled_from([DEFAULT_MAX_LINE, DEFAULT_MAX_LINE, 2200, 1100, 40, 8, 3, 1])


def _reads(units: list[bytes], end: bytes, plan: tuple[str, list[bool], list[int]]) -> list[bytes]:
    mode, groups, anywhere = plan
    wire = b"".join(units) + end
    bounds = [sum(map(len, units[: i + 1])) for i in range(len(units))]
    cuts = set()
    if mode == "each chunk":
        cuts.update(bounds)
    elif mode == "groups":
        cuts.update(at for at, cut in zip(bounds, groups, strict=False) if cut)
    else:
        cuts.update(at % (len(wire) + 1) for at in anywhere)
    points = [0, *sorted(cut for cut in cuts if 0 < cut < len(wire)), len(wire)]
    return [wire[a:b] for a, b in pairwise(points) if b > a]


def _state(decoder: ChunkedDecoder, splitter: LineSplitter) -> tuple[Any, ...]:
    return (
        decoder._buf,
        decoder._left,
        decoder._need_crlf,
        decoder._short_lines,
        decoder.done,
        list(splitter._parts),
        splitter._size,
        splitter._overflow,
        splitter.dropped,
        splitter.pending(),
    )


def _run_framing(
    cls: type[ChunkedDecoder], reads: list[bytes], container: Callable[[bytes], Any], max_line: int
) -> list[Any]:
    """Per read: the outcome and the state after it; then the drops and the log records."""
    drops: list[int] = []
    decoder = cls()
    splitter = LineSplitter(max_line, on_drop=drops.append)
    seen: list[Any] = []
    with records("rxtweet.framing") as logged:
        for data in reads:
            got = outcome(lambda data=data: decoder.feed_lines(container(data), splitter))
            seen.append((got, _state(decoder, splitter)))
    seen.append((drops, logged))
    return seen


@SETTINGS
@given(
    units=st.lists(UNIT, max_size=12),
    end=END,
    plan=READS,
    container=st.sampled_from(CONTAINERS),
    max_line=MAX_LINE,
)
# One chunk a read, a bare LF first, inside and last (the one-chunk read's check).
@example(
    units=[chunk(b"\nab\r\n"), chunk(b"ab\ncd\r\n"), chunk(b"ab\n\r\n"), chunk(b"x\r\n")],
    end=b"0\r\n\r\n",
    plan=("each chunk", [], []),
    container=bytes,
    max_line=DEFAULT_MAX_LINE,
)
# Whole chunks in one read of >= 2048 bytes, one with a bare LF (first, inside) in it.
@example(
    units=[*_x_chunks(30, 80), chunk(b"\nab\r\n"), *_x_chunks(3, 80)],
    end=b"",
    plan=("anywhere", [], []),
    container=bytes,
    max_line=DEFAULT_MAX_LINE,
)
# ... and a bare LF as the read's very first payload byte (find() == 0).
@example(
    units=[chunk(b"\nab\r\n"), *_x_chunks(30, 80)],
    end=b"",
    plan=("anywhere", [], []),
    container=bytes,
    max_line=DEFAULT_MAX_LINE,
)
@example(
    units=[*_x_chunks(30, 80), chunk(b"ab\ncd\r\n")],
    end=b"0\r\n\r\n",
    plan=("anywhere", [], []),
    container=bytearray,
    max_line=DEFAULT_MAX_LINE,
)
def test_feed_lines_gives_what_the_pre_change_code_gave(
    units: list[bytes],
    end: bytes,
    plan: tuple[str, list[bool], list[int]],
    container: Callable[[bytes], Any],
    max_line: int,
) -> None:
    reads = _reads(units, end, plan)
    old = _run_framing(OldChunkedDecoder, reads, container, max_line)
    new = _run_framing(ChunkedDecoder, reads, container, max_line)
    assert new == old


@SETTINGS
@given(
    units=st.lists(ANY_CHUNK, max_size=8),
    container=st.sampled_from(CONTAINERS),
    max_line=MAX_LINE,
)
def test_one_chunk_a_read_gives_what_the_pre_change_code_gave(
    units: list[bytes], container: Callable[[bytes], Any], max_line: int
) -> None:
    # A stream at a low rate: every read one chunk, the one-chunk read's check each time.
    old = _run_framing(OldChunkedDecoder, units, container, max_line)
    new = _run_framing(ChunkedDecoder, units, container, max_line)
    assert new == old


def test_the_framing_examples_reach_both_changed_checks() -> None:
    # Not a tautology of the comparison above: each changed check must have been the one
    # that decided for these reads (else the comparison could not see a broken check).
    fast = chunk(b"ab\ncd\r\n")
    splitter = LineSplitter()
    assert ChunkedDecoder().feed_lines(fast, splitter) == [b"ab", b"cd"]
    wire = b"".join([*_x_chunks(30, 80), chunk(b"\nab\r\n"), *_x_chunks(2, 80)])
    assert len(wire) >= WHOLE_CHUNKS_MIN_READ
    decoder = ChunkedDecoder()
    out: list[bytes] = []
    assert decoder._whole_chunks(wire, out, DEFAULT_MAX_LINE) == wire and out == []
    lines = decoder.feed_lines(wire, LineSplitter())
    assert lines == [_x_line(i, 80) for i in range(30)] + [b"", b"ab"] + [
        _x_line(i, 80) for i in range(2)
    ]


# --- 2. parse: decode and batch_parser ---------------------------------------------------------

#: Integers around the 64-bit edges and the 19/20/21-digit lengths, either sign.
EDGES = [2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**18, 10**19 - 1, 10**19, 10**20 - 1, 10**20, 10**21]
INTS = st.one_of(
    st.sampled_from([*EDGES, *(-v for v in EDGES), -(2**63) - 1, -(10**18) - 1]),
    st.integers(-(10**22), 10**22),
)
DIGIT_RUN = st.builds(
    lambda sign, n, lead: sign + lead + b"7" * n,
    st.sampled_from([b"", b"-"]),
    st.integers(17, 22),
    st.sampled_from([b"", b"0", b"1"]),
)
FRAGMENT = st.one_of(
    st.sampled_from(
        [
            b"{",
            b"}",
            b'"a"',
            b":",
            b",",
            b"-",
            b"0",
            b" ",
            b"\r",
            b"\xff",
            b"\xe2\x82",
            b'"',
            b"[",
            b"]",
            b"1e5",
            b".5",
            b"null",
            b"tru",
            b"\\ud83d",
            b"1234567890",
        ]
    ),
    DIGIT_RUN,
)


def _doc(value: Any, text: bytes, where: str) -> bytes:
    body = json.dumps({"id": value, "text": text.decode("latin-1")}).encode()
    return {"plain": body, "space": b" " + body + b"\r", "glued": body + body}[where]


LINES = st.one_of(
    st.builds(_doc, INTS, DIGIT_RUN, st.sampled_from(["plain", "plain", "space", "glued"])),
    st.builds(lambda n: b'{"n":%s}' % n, DIGIT_RUN),  # a literal that may not be JSON
    st.builds(lambda n: b'{"a":[1,%s,{"b":%s}]}' % (n, n), DIGIT_RUN),
    st.lists(FRAGMENT, max_size=10).map(b"".join),
    st.sampled_from([b"", b" ", b"\r", b"\t\r", b'{"boom":1}', b"[1]", b"12345678901234567890"]),
)


@SETTINGS
@given(line=LINES, container=st.sampled_from(CONTAINERS), exact_ints=st.booleans())
@example(line=b'{"id":18446744073709551616}', container=bytes, exact_ints=True)
@example(line=b'{"id":-9223372036854775809}', container=bytearray, exact_ints=True)
# The run at position 0 (find() == 0): not an object either way, but the exact path's.
@example(line=b"-1234567890123456789012", container=bytes, exact_ints=True)
def test_decode_gives_what_the_pre_change_code_gave(
    line: bytes, container: Callable[[bytes], Any], exact_ints: bool
) -> None:
    value = container(line)
    OLD_EXACT.clear()
    old = outcome(lambda: _old_decode(value, exact_ints=exact_ints))
    with new_exact() as exact:
        new = outcome(lambda: decode(value, exact_ints=exact_ints))
    assert new == old
    assert exact == OLD_EXACT


@pytest.mark.parametrize("value", ["{}", '{"id":12345678901234567890}', memoryview(b"{}"), 5, None])
def test_decode_of_a_non_bytes_fails_the_same_way(value: Any) -> None:
    # Not bytes-like: the same exception type as before. (A str gives TypeError either way,
    # "must be str, not bytes" now, "'in <string>' requires string as left operand, not
    # bytes" before: only the text of a misuse's error moved.)
    old = outcome(lambda: _old_decode(value))
    new = outcome(lambda: decode(value))
    assert new[:2] == old[:2]
    assert new[0] == "raised"


def _convert(doc: dict[str, Any]) -> dict[str, Any]:
    if "boom" in doc:
        raise KeyError(f"boom {sorted(doc)}")
    return doc


def _run_batch(
    make: Callable[..., BatchParser],
    batches: list[list[bytes]],
    keep_raw: bool,
    exact_ints: bool,
    with_tally: bool,
) -> list[Any]:
    stats = ParseStats()
    parse = make(_convert, stats, keep_raw=keep_raw, exact_ints=exact_ints)
    emitted: list[Any] = []
    seen: list[Any] = []
    with records("rxtweet.parse") as logged:
        for batch in batches:
            others: list[Any] = []
            tally = ReadTally(lambda doc: doc.get("id"), others.append) if with_tally else None
            got = outcome(
                lambda batch=batch, tally=tally: parse(batch, emitted.append, [False], tally)
            )
            tallied = (
                None
                if tally is None
                else (tally.parsed, tally.converted, tally.without_data, tally.skipped)
            )
            seen.append((got, tallied, canon(others), stats.snapshot()))
    seen.append((canon(emitted), logged))
    return seen


@SETTINGS
@given(
    batches=st.lists(
        st.lists(
            st.builds(lambda line, make: make(line), LINES, st.sampled_from(CONTAINERS)), max_size=5
        ),
        max_size=3,
    ),
    keep_raw=st.booleans(),
    exact_ints=st.booleans(),
    with_tally=st.booleans(),
)
@example(
    batches=[[b'{"id":18446744073709551616}', b"", b'{"id":-9999999999999999999}', b'{"boom":1}']],
    keep_raw=True,
    exact_ints=True,
    with_tally=True,
)
def test_batch_parser_gives_what_the_pre_change_code_gave(
    batches: list[list[bytes]], keep_raw: bool, exact_ints: bool, with_tally: bool
) -> None:
    OLD_EXACT.clear()
    old = _run_batch(_old_batch_parser, batches, keep_raw, exact_ints, with_tally)
    with new_exact() as exact:
        new = _run_batch(batch_parser, batches, keep_raw, exact_ints, with_tally)
    assert new == old
    assert exact == OLD_EXACT


# --- 3. end to end: a real server, one chunk a read --------------------------------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def _dechunk(wire: bytes) -> bytes:
    """An independent oracle: the payload of a well-formed chunked body."""
    payload = b""
    while True:
        field, wire = wire.split(b"\r\n", 1)
        size = int(field, 16)
        if size == 0:
            return payload
        payload += wire[:size]
        assert wire[size : size + 2] == b"\r\n"
        wire = wire[size + 2 :]


def _oracle_lines(wire: bytes) -> list[bytes]:
    complete = _dechunk(wire).split(b"\n")[:-1]
    return [line[:-1] if line.endswith(b"\r") else line for line in complete]


def _e2e_reads() -> list[bytes]:
    many = _x_chunks(30, 80)
    return [
        chunk(b"\r\n"),  # a keep-alive (sent with the head)
        chunk(b'{"n":1}\r\n'),  # X's framing: the one-chunk read
        chunk(b'{"n":2}\n{"n":3}\r\n'),  # a bare LF inside
        chunk(b'\n{"n":4}\r\n'),  # a bare LF first: a keep-alive, then a message
        chunk(b'{"id":12345678901234567890}\r\n'),  # 20 digits: exact
        chunk(b'{"id":-9999999999999999999}\n'),  # "-" and 19 digits, a bare LF end
        chunk(b'{"id":1234567890123456789}\r\n'),  # 19 digits: orjson's
        b"".join([chunk(b'\n{"n":7}\r\n'), *many]),  # whole chunks, a bare LF first
        b"".join([*many[:15], chunk(b'{"n":5}\n{"n":6}\r\n'), *many[15:]]),  # ... inside
        b"".join(many),  # whole chunks, X's framing
        b"0\r\n\r\n",
    ]


@pytest.fixture
def serve() -> Iterator[Callable[[Any], RawServer]]:
    with raw_servers() as start:
        yield start
    assert wait_until(lambda: not reader_threads()), "a reader thread outlived its test"


def test_one_chunk_a_read_through_a_real_server(
    serve: Callable[[Any], RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    pieces = _e2e_reads()
    wire = b"".join(pieces)
    fed: list[bytes] = []
    cond = threading.Condition()
    real = ChunkedDecoder.feed_lines

    def spy(self: ChunkedDecoder, data: bytes, splitter: LineSplitter) -> list[bytes]:
        try:
            return real(self, data, splitter)
        finally:
            with cond:
                fed.append(bytes(data))
                cond.notify_all()

    monkeypatch.setattr(ChunkedDecoder, "feed_lines", spy)

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = len(fed)
        conn.sendall(HEAD + pieces[0])
        for i, piece in enumerate(pieces[1:], 1):
            with cond:  # the next chunk once the client decoded the last read: one a read
                cond.wait_for(lambda i=i: len(fed) - start >= i, timeout=1)
            conn.sendall(piece)

    server = serve(handler)
    request = get(f"{server.url}/s")
    got, error = collect(transport_lines(request, stall_timeout=2, header_timeout=2), timeout=3)
    assert error is None
    assert fed == pieces  # each read was one chunk (or the whole-chunks read)
    expected = _oracle_lines(wire)
    assert got == expected
    assert b'{"n":2}' in expected and b"" in expected[1:]  # the bare LFs did cut lines

    stats = ParseStats()
    parsed = transport_lines(request, stall_timeout=2, header_timeout=2).pipe(
        parse_lines(lambda doc: doc, stats)
    )
    items, error = collect(parsed, timeout=3)
    assert error is None
    assert [canon(item) for item in items] == [
        canon(KeepAlive() if not line else json.loads(line)) for line in expected
    ]
    assert stats.messages == sum(1 for line in expected if line)
    assert stats.keep_alives == expected.count(b"")
    assert stats.malformed == 0
