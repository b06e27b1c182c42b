"""Hostile review of issue 17's v1.1 change (uncommitted when written):

1. ``V1Stream.statuses`` is ``select(status_of)`` and the converter of each v1.1 connection
   (``_watching_unknown()``) carries ``convert.projections = (convert, {status_of:
   status_of_doc})``, so that ``rxtweet.parse.batch_parser`` builds a status straight from
   the decoded document when ``statuses`` is the share's one value subscriber.
   ``status_of_doc(doc)`` must be ``status_of(convert(doc))`` in every observable way:
   result, exception, log records, and the unknown streak (which decides the "does not look
   like API v1.1" WARNING), whichever of the two ways each message went.
2. ``_end_on_fatal_disconnect_batches`` passes a read on whole after one C-level pass
   (``bytes.find`` over its lines) says no line has ``"disconnect"`` in its first 24 bytes.

References: a fresh converter's ``status_of(convert(doc))`` (the old ``of_type(Status)``
pick is behaviourally ``status_of``), the pre-change batch operator inlined below, and,
end to end, the share's own way (``multicast_of`` patched to ``None`` in
``rxtweet.connection`` and ``rxtweet.parse``, so every message is a ``Parsed`` given to the
share) with the old operator and the old pick. Runs go through a batch transport whose reads
the test pushes (exact reads, virtual time) and over a real server on 127.0.0.1
(:class:`support.RawServer`). Items, order, errors, stats and log records must match.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from operator import attrgetter
from typing import Any

import orjson
import pytest
from delivery_harness import PushedReads
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import EventLoopScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler
from support import RawServer, chunk, log_records, reader_threads, wait_until

from rxtweet import connection as connection_module
from rxtweet import parse as parse_module
from rxtweet.errors import FatalDisconnect
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.v1 import Stream
from rxtweet.v1 import client as client_module
from rxtweet.v1 import framing as framing_module
from rxtweet.v1 import stream as stream_module
from rxtweet.v1.convert import UNKNOWN_STREAK_WARNING, _watching_unknown, status_of
from rxtweet.v1.framing import _disconnect_notice, _end_on_fatal_disconnect_batches
from rxtweet.v1.models import Status

CREDS = ("ck", "cs", "at", "ats")
ONCE = ReconnectPolicy(max_retries=0)
FATAL = frozenset({2, 6, 7})
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


# --- the pre-change code, inlined as the reference -------------------------------------------


def old_end_on_fatal_disconnect_batches(
    codes: frozenset[int],
) -> Callable[[Observable[list[bytes]]], Observable[list[bytes]]]:
    """The pre-change ``rxtweet.v1.framing._end_on_fatal_disconnect_batches`` (HEAD
    972ce61), verbatim but for names: the per-line loop only."""

    def operator(source: Observable[list[bytes]]) -> Observable[list[bytes]]:
        def subscribe(
            observer: abc.ObserverBase[list[bytes]], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            stopped = [False]

            def on_next(batch: list[bytes]) -> None:
                start = 0
                for index, line in enumerate(batch):
                    if b'"disconnect"' not in line[:24]:
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


def old_pick(message: Any) -> Status | None:
    """The pre-change ``statuses`` pick (``Substreams.of_type(Status)``'s)."""
    return message if type(message) is Status else None


# --- log records -----------------------------------------------------------------------------


def recording() -> AbstractContextManager[list[tuple[str, int, str]]]:
    """Every record of the ``rxtweet`` loggers, DEBUG up, as (name, level, message)."""
    return log_records("rxtweet", lambda record: (record.name, record.levelno, record.getMessage()))


# --- documents a hostile server sends --------------------------------------------------------

IDS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just(10**40),
    st.booleans(),
    st.floats(allow_nan=True),
    st.sampled_from(["123", "12x", "", " 7", "1e3", "-5", "9" * 400]),
    st.none(),
    st.lists(st.integers(), max_size=1),
)
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.just(2**70),
    st.floats(allow_nan=True, width=32),
    st.sampled_from(["", "x", "12", "1.5", "FALLING_BEHIND"]),
    st.just([]),
    st.just(["DE", 1]),
    st.just({}),
)
VALID_INNER: dict[str, dict[str, Any]] = {
    "delete": {"status": {"id": 1, "id_str": "1", "user_id": 2, "user_id_str": "2"}},
    "disconnect": {"code": 12, "stream_name": "s", "reason": "r"},
    "limit": {"track": 5, "timestamp_ms": "1"},
    "scrub_geo": {"user_id": 1, "up_to_status_id": 2},
    "status_withheld": {"id": 1, "user_id": 2, "withheld_in_countries": ["DE"]},
    "user_withheld": {"id": 1, "withheld_in_countries": ["DE"]},
    "warning": {"code": "FALLING_BEHIND", "message": "m", "percent_full": 60},
}
FIELDS = sorted({field for inner in VALID_INNER.values() for field in inner} | {"code"})


def _inner(kind: str) -> st.SearchStrategy[Any]:
    valid = VALID_INNER[kind]
    broken = st.dictionaries(st.sampled_from([*FIELDS, "status"]), ODD, max_size=2).map(
        lambda bad: {**valid, **bad}
    )
    dropped = st.sampled_from(sorted(valid)).map(
        lambda gone: {k: v for k, v in valid.items() if k != gone}
    )
    nested = st.builds(
        lambda i, u: {"status": {"id": i, "user_id": u}}, IDS, st.one_of(IDS, st.just(3))
    )
    return st.one_of(st.just(valid), broken, dropped, nested, ODD)


NOTICES = st.sampled_from(sorted(VALID_INNER)).flatmap(
    lambda kind: _inner(kind).map(lambda inner: {kind: inner})
)
#: A status as X sends it (reply key there), with an integer id: the fast path.
PLAIN_STATUS = st.builds(
    lambda n, reply: {"in_reply_to_status_id": reply, "id": n, "id_str": str(n), "text": "t"},
    st.integers(min_value=0, max_value=2**64),
    st.one_of(st.none(), st.integers(min_value=0, max_value=9)),
)
#: Everything mixed: status keys of every kind, notice keys, v2's keys, junk keys.
MIXED = st.fixed_dictionaries(
    {},
    optional={
        "in_reply_to_status_id": st.one_of(st.none(), st.integers(0, 9)),
        "id": IDS,
        "id_str": st.one_of(IDS, st.just("77")),
        "user": st.just({"id": 1}),
        "text": st.just("t"),
        "full_text": st.just("ft"),
        "delete": _inner("delete"),
        "limit": _inner("limit"),
        "warning": _inner("warning"),
        "data": st.just({"id": "1", "text": "v2"}),
        "matching_rules": st.just([{"id": "1", "tag": "x"}]),
        "includes": st.just({}),
        "friends": st.just([1, 2]),
    },
)
UNKNOWN = st.sampled_from(
    [
        {},
        {"friends": [1]},
        {"event": "follow"},
        {"data": {"id": "1", "text": "v2"}, "matching_rules": []},
        {"includes": {}},
        {"delete": None},
        {"user": {"id": 1}, "text": "no id"},
    ]
)
DOCS = st.one_of(PLAIN_STATUS, NOTICES, MIXED, UNKNOWN, UNKNOWN, UNKNOWN)


def outcome(make: Callable[[], Any], doc: dict[str, Any]) -> tuple[Any, ...]:
    """What ``make()`` gave: its result (type, whether its data is ``doc`` itself or an
    equal one, its repr) or its exception (type and message)."""
    try:
        value = make()
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    if value is None:
        return ("value", None)
    # Not the model itself: a Status without an id cannot be compared (its == reads .id).
    return ("value", type(value), value.data is doc, value.data == doc, repr(value))


def projection_of(convert: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """The converter's projection for ``status_of``, as ``batch_parser`` finds it."""
    owner, table = convert.projections  # type: ignore[attr-defined]
    assert owner is convert
    assert type(table) is dict and list(table) == [status_of]
    return table[status_of]  # type: ignore[no-any-return]


def test_the_projection_is_found_by_the_parser_and_statuses_uses_its_pick() -> None:
    convert = _watching_unknown()
    found = parse_module._projections_of(convert)
    assert list(found) == [id(status_of)]
    # Each connection's converter has its own projection (its own streak).
    assert projection_of(_watching_unknown()) is not projection_of(convert)


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    docs=st.lists(DOCS, max_size=30),
    ways=st.lists(st.booleans(), min_size=30, max_size=30),
    limit=st.integers(min_value=1, max_value=4),
)
@example(
    docs=[{}] * 6 + [{"in_reply_to_status_id": None, "id": 1}] + [{}] * 6, ways=[True] * 30, limit=3
)
@example(
    docs=[{"friends": [1]}] * 3 + [{"in_reply_to_status_id": None, "id": True}] + [{}] * 4,
    ways=[False, True] * 15,
    limit=2,
)
def test_the_projection_is_status_of_convert_in_every_way(
    docs: list[dict[str, Any]], ways: list[bool], limit: int
) -> None:
    # Converter A takes each message by the projection (ways[i]) or by convert (as the
    # parser does when subscribers come and go); converter B, the reference, always by
    # convert. Same results per message, same records per message, in order.
    before = [json.dumps(doc, sort_keys=True, default=repr) for doc in docs]
    a, b = _watching_unknown(limit), _watching_unknown(limit)
    project = projection_of(a)
    got_a: list[tuple[Any, ...]] = []
    got_b: list[tuple[Any, ...]] = []
    for index, doc in enumerate(docs):
        by_projection = ways[index]
        with recording() as records_a:
            if by_projection:
                result_a = outcome(lambda: project(doc), doc)  # noqa: B023
            else:
                result_a = outcome(lambda: a(doc), doc)  # noqa: B023
        with recording() as records_b:
            if by_projection:
                result_b = outcome(lambda: status_of(b(doc)), doc)  # noqa: B023
            else:
                result_b = outcome(lambda: b(doc), doc)  # noqa: B023
        got_a.append((index, result_a, records_a))
        got_b.append((index, result_b, records_b))
    assert got_a == got_b
    assert [json.dumps(doc, sort_keys=True, default=repr) for doc in docs] == before


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(docs=st.lists(DOCS, max_size=40), limit=st.integers(min_value=1, max_value=3))
def test_the_projection_alone_is_the_old_pick_of_convert(
    docs: list[dict[str, Any]], limit: int
) -> None:
    # The whole run by the projection against the whole run by the old pick of convert,
    # records compared as one sequence (the limit's WARNING and the DEBUG records after it).
    a, b = _watching_unknown(limit), _watching_unknown(limit)
    project = projection_of(a)
    with recording() as records_a:
        got_a = [outcome(lambda: project(doc), doc) for doc in docs]  # noqa: B023
    with recording() as records_b:
        got_b = [outcome(lambda: old_pick(b(doc)), doc) for doc in docs]  # noqa: B023
    assert got_a == got_b
    assert records_a == records_b


def test_a_streak_broken_by_a_projected_status_is_broken_for_convert_too() -> None:
    # limit unknowns in a row warn once; a status taken by the projection between them must
    # reset the streak convert keeps, and after the warning the DEBUG-only phase must end.
    convert = _watching_unknown(3)
    project = projection_of(convert)
    status: dict[str, Any] = {"in_reply_to_status_id": None, "id": 5}
    docs: list[dict[str, Any]] = [{"a": 1}, {"a": 2}, status, {"a": 3}, {"a": 4}]
    with recording() as records:
        for doc in docs:
            (project if doc is status else convert)(doc)
        assert not any("does not look like API v1.1" in r[2] for r in records)
        convert({"a": 5})  # the third in a row since the status
        for _ in range(2):
            project({"b": 1})  # DEBUG now, by the projection as by convert
        project(status)
        convert({"c": 1})  # a new run: WARNING again
    levels = [(r[1], r[2].split(" (")[0].split(" like API")[0]) for r in records]
    warning, debug = logging.WARNING, logging.DEBUG
    unknown = "Received unknown message type"
    assert levels == [
        (warning, unknown),
        (warning, unknown),
        (warning, unknown),
        (warning, unknown),
        (warning, unknown),
        (warning, "3 messages in a row were of no API v1.1 type: this stream does not look"),
        (debug, unknown),
        (debug, unknown),
        (warning, unknown),
    ]


# --- the batch operator ------------------------------------------------------------------------

KEY = b'"disconnect"'


def disconnect_line(code: int, at: int = 1, tail: bytes = b"") -> bytes:
    """A disconnect message whose key starts at byte ``at`` (whitespace before it)."""
    line = b"{" + b" " * (at - 1) + KEY + b':{"code":%d,"stream_name":"s","reason":"r"}}' % code
    return line + tail


LINES = st.one_of(
    st.builds(disconnect_line, st.sampled_from([2, 6, 7, 12, 1]), st.integers(1, 14)),
    st.builds(lambda n: b'{"in_reply_to_status_id":null,"id":%d}' % n, st.integers(0, 99)),
    st.sampled_from(
        [
            b"",
            b"  ",
            b"not json",
            b"{" + b" " * 11 + KEY + b":{}}",  # the key ends at byte 24: found
            b"{" + b" " * 12 + KEY + b":{}}",  # it ends at byte 25: not found
            b"\r\n\t " + KEY,
            KEY,
            b'{"x":1,"disconnect":{"code":2}}',
            b'{"disconnect":"2"}',
            b'{"disconnect":{"code":"2"}}',
            b'{"disconnect":{"code":2.0}}',
            b'{"disconnect":[2]}',
            b'["disconnect",{"code":2}]',
            b'{"disconnect":{"code":2}',
            b'{"disconnect"',
            '{"disconnect":{"code":6,"reason":"\u00e9"}}'.encode(),
        ]
    ),
    st.binary(max_size=30),
)


def run_operator(
    operator: Callable[[Observable[list[bytes]]], Observable[list[bytes]]],
    batches: list[list[Any]],
    dispose_at: int | None,
) -> tuple[list[Any], list[tuple[str, int, str]]]:
    """``batches`` through ``operator``; what came out (each batch's lines, whether it is
    the batch given, the error) and the log records. ``dispose_at``: the subscriber
    disposes itself on the item with that number."""
    subject: Subject[list[bytes]] = Subject()
    out: list[Any] = []
    box: list[abc.DisposableBase] = []

    def on_next(batch: list[bytes]) -> None:
        out.append(("batch", list(batch), any(batch is given for given in batches)))
        if dispose_at is not None and len(out) == dispose_at + 1 and box:
            box[0].dispose()

    def on_error(error: Exception) -> None:
        out.append(("error", type(error).__name__, str(error)))

    with recording() as records:
        box.append(subject.pipe(operator).subscribe(on_next, on_error, lambda: out.append("end")))
        for batch in batches:
            try:
                subject.on_next(batch)
            except Exception as exc:
                out.append(("raised", type(exc).__name__, str(exc)))
        subject.on_completed()
    return out, records


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(
    batches=st.lists(st.lists(LINES, max_size=8), max_size=5),
    codes=st.sampled_from([FATAL, frozenset({12}), frozenset({1, 2, 6, 7, 12})]),
    dispose_at=st.one_of(st.none(), st.integers(0, 4)),
)
@example(batches=[[]], codes=FATAL, dispose_at=None)
@example(batches=[[b"{" + b" " * 11 + KEY + b':{"code":2}}']], codes=FATAL, dispose_at=None)
def test_the_batch_operator_is_the_old_one(
    batches: list[list[bytes]], codes: frozenset[int], dispose_at: int | None
) -> None:
    new = run_operator(_end_on_fatal_disconnect_batches(codes), batches, dispose_at)
    old = run_operator(old_end_on_fatal_disconnect_batches(codes), batches, dispose_at)
    assert new == old


@pytest.mark.parametrize(
    "odd",
    [
        bytearray(b'{"disconnect":{"code":2}}'),
        memoryview(b'{"disconnect":{"code":2}}'),
        '{"disconnect":{"code":2}}',
        None,
        type("Line", (bytes,), {})(b'{"disconnect":{"code":2}}'),
    ],
    ids=["bytearray", "memoryview", "str", "None", "bytes-subclass"],
)
def test_lines_that_are_not_bytes_go_the_old_way(odd: Any) -> None:
    for batch in ([odd], [b"{}", odd], [odd, b'{"disconnect":{"code":2}}'], [b"{}", odd, b"x"]):
        new = run_operator(_end_on_fatal_disconnect_batches(FATAL), [batch], None)
        old = run_operator(old_end_on_fatal_disconnect_batches(FATAL), [batch], None)
        assert new == old, batch


@pytest.mark.parametrize("at", [10, 11, 12, 13, 14])
def test_the_key_at_each_byte_around_the_limit(at: int) -> None:
    # A key starting at byte `at` ends at at+12: within the first 24 bytes up to at == 12.
    line = b"{" + b" " * (at - 1) + KEY + b':{"code":2}}'
    assert line.find(KEY) == at
    for batch in ([line], [b"{}", line, b"{}"], [b"{}"] * 5 + [line]):
        new = run_operator(_end_on_fatal_disconnect_batches(FATAL), [batch], None)
        old = run_operator(old_end_on_fatal_disconnect_batches(FATAL), [batch], None)
        assert new == old
        assert (new[0][-1][0] == "error") is (at <= 12)


# --- a whole connection, reads pushed by the test ----------------------------------------------


@contextlib.contextmanager
def way(new: bool) -> Iterator[list[int]]:
    """The new code with its projection counted (``new``), or the reference: the share's
    way (``multicast_of`` gives ``None``), the old pick and the old batch operator."""
    made: list[int] = []
    with pytest.MonkeyPatch.context() as patch:
        if new:
            real = getattr(client_module, "_watching_unknown")  # noqa: B009 - not exported

            def counted(limit: int = UNKNOWN_STREAK_WARNING) -> Any:
                convert = real(limit)
                fast = projection_of(convert)

                def status_of_doc(doc: dict[str, Any]) -> Any:
                    made.append(1)
                    return fast(doc)

                convert.projections = (convert, {status_of: status_of_doc})
                return convert

            patch.setattr(client_module, "_watching_unknown", counted)
        else:
            patch.setattr(parse_module, "multicast_of", lambda emit: None)
            patch.setattr(connection_module, "multicast_of", lambda emit: None)
            patch.setattr(stream_module, "status_of", old_pick)
            patch.setattr(
                framing_module,
                "_end_on_fatal_disconnect_batches",
                old_end_on_fatal_disconnect_batches,
            )
        yield made


def show(item: Any) -> Any:
    """A comparable form: a status's or notice's data, an event's kind (and an unknown
    message's keys), anything else's repr."""
    if type(item) is Status:
        return ("status", json.dumps(item.data, sort_keys=True, default=repr))
    data = getattr(item, "data", None)
    if type(data) is dict:
        return (type(item).__name__, json.dumps(data, sort_keys=True, default=repr))
    if type(item).__module__ == "rxtweet.events":
        return (type(item).__name__, getattr(item, "keys", None))
    return repr(item)


def pushed_run(reads: list[list[bytes]], extra: str | None) -> dict[str, Any]:
    """``statuses`` (and ``extra``) of a v1.1 sample stream over ``reads``."""
    transport = PushedReads()
    client = Stream(
        *CREDS,
        base_url="http://127.0.0.1:9",
        transport=transport,
        scheduler=TestScheduler(),
        reconnect=ONCE,
    )
    stream = client.sample_stream()
    got: dict[str, list[Any]] = {}

    def sub(name: str, source: Observable[Any]) -> abc.DisposableBase:
        out = got.setdefault(name, [])
        return source.subscribe(
            lambda x: out.append(show(x)),
            lambda e: out.append(("error", type(e).__name__, str(e))),
            lambda: out.append("completed"),
        )

    with recording() as records:
        with stream.hold():
            subs = [sub("statuses", stream.statuses)]
            if extra is not None:
                subs.append(sub(extra, getattr(stream, extra)))
        assert transport.observer is not None
        for read in reads:
            try:
                transport.observer.on_next(read)
            except Exception as exc:
                got.setdefault("raised", []).append((type(exc).__name__, str(exc)))
        transport.observer.on_completed()
        for each in subs:
            each.dispose()
    return {"got": got, "stats": stream.stats.snapshot(), "records": records}


def _line(doc: Any) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_PASSTHROUGH_DATACLASS) if doc is not None else b""


def encodable(doc: dict[str, Any]) -> bool:
    try:
        orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


READ_LINES = st.one_of(
    DOCS.filter(encodable).map(orjson.dumps),
    st.builds(
        lambda n: b'{"id":%d,"in_reply_to_status_id":null,"id_str":"%d"}' % (n, n),
        st.integers(0, 10**30),
    ),
    LINES,
)
FIRST = b'{"in_reply_to_status_id":null,"id":1,"text":"first"}'


@settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    reads=st.lists(st.lists(READ_LINES, max_size=10), max_size=5),
    extra=st.sampled_from([None, None, "deletes", "events", "messages", "disconnect_messages"]),
)
def test_pushed_reads_give_what_the_old_code_gave(
    reads: list[list[bytes]], extra: str | None
) -> None:
    # The first read is data alone (the connection's first data goes the checking way).
    reads = [[FIRST], *reads]
    with way(True) as made:
        new = pushed_run(reads, extra)
    with way(False):
        old = pushed_run(reads, extra)
    assert new == old
    if extra is None and any(len(r) for r in reads[1:]) and "error" not in str(new["got"]):
        assert made  # the projection did run


def test_unknowns_past_the_limit_and_statuses_by_the_projection() -> None:
    unknown = b'{"data":{"id":"1","text":"v2"},"matching_rules":[]}'
    status = b'{"in_reply_to_status_id":null,"id":%d,"text":"s"}'
    reads = [
        [FIRST],
        [unknown] * (UNKNOWN_STREAK_WARNING + 3),
        [status % 2, unknown, status % 3],
        [unknown] * (UNKNOWN_STREAK_WARNING - 1),
        [unknown, status % 4],
    ]
    with way(True) as made:
        new = pushed_run(reads, None)
    with way(False):
        old = pushed_run(reads, None)
    assert new == old
    assert len(made) == sum(len(r) for r in reads[1:])
    looks_v2 = [r for r in new["records"] if "look like API v2" in r[2]]
    assert len(looks_v2) == 1  # once a connection (its converter)
    debug = [r for r in new["records"] if r[1] == logging.DEBUG and "unknown message" in r[2]]
    assert len(debug) == 3  # the first run's three unknowns past the limit
    ids = [json.loads(x[1])["id"] for x in new["got"]["statuses"] if x[0] == "status"]
    assert ids == [1, 2, 3, 4]


# --- over a real server ------------------------------------------------------------------------


class Reads:
    """A :class:`RawServer` handler: ``first`` alone, then each group as one chunk once the
    connection has parsed the lines before it (or the test says it ended); a group that is
    a ``bytes`` is sent raw (a line split across reads)."""

    def __init__(self, groups: list[list[bytes] | bytes]) -> None:
        self.groups = groups
        #: How many lines the client has parsed; ``None``: a short pause between groups.
        self.parsed: Callable[[], int] | None = None
        self.ended = threading.Event()

    def __call__(self, conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD + chunk(FIRST + b"\r\n"))
        sent = 1
        for group in self.groups:
            parsed = self.parsed
            if parsed is None:
                self.ended.wait(0.05)
            else:
                wait_until(lambda: self.ended.is_set() or parsed() >= sent, 1.0)  # noqa: B023
            if self.ended.is_set():
                return
            if isinstance(group, bytes):
                conn.sendall(chunk(group))
                sent += group.count(b"\n")
            else:
                conn.sendall(chunk(b"".join(line + b"\r\n" for line in group)))
                sent += len(group)
        conn.sendall(b"0\r\n\r\n")


def parsed_of(stream: Any) -> Callable[[], int]:
    def parsed() -> int:
        s = stream.stats
        return int(s.messages + s.keep_alives + s.malformed)

    return parsed


@pytest.fixture
def servers() -> Iterator[list[RawServer]]:
    made: list[RawServer] = []
    try:
        yield made
    finally:
        for server in made:
            server.close()
    assert wait_until(lambda: not reader_threads(), 2.0), "a reader thread outlived its test"


def normal(records: list[tuple[str, int, str]], url: str) -> list[tuple[str, int, str]]:
    return [(n, lv, m.replace(url, "URL")) for n, lv, m in records]


def served_run(
    servers: list[RawServer],
    groups: list[list[bytes] | bytes],
    build: Callable[[Any, Any], None],
    **params: Any,
) -> dict[str, Any]:
    """A v1.1 sample stream on a real server sending ``groups``; ``build(stream, sub)``
    subscribes (inside ``hold()``); ``sub(name, source, on_item)`` records."""
    feed = Reads(groups)
    server = RawServer(feed)
    servers.append(server)
    client = Stream(*CREDS, base_url=server.url, reconnect=ONCE)
    stream = client.sample_stream(**params)
    feed.parsed = parsed_of(stream)
    got: dict[str, list[Any]] = {}
    subs: list[abc.DisposableBase] = []
    ended = threading.Event()

    def sub(name: str, source: Observable[Any], on_item: Any = None) -> abc.DisposableBase:
        out = got.setdefault(name, [])

        def on_next(x: Any) -> None:
            out.append(show(x))
            if on_item is not None:
                on_item(x)

        def on_error(e: Exception) -> None:
            out.append(("error", type(e).__name__, str(e)))
            ended.set()

        def on_completed() -> None:
            out.append("completed")
            ended.set()

        # No subscriber of the test's own: another one would turn the projection off.
        subscription = source.subscribe(on_next, on_error, on_completed)
        subs.append(subscription)
        return subscription

    with recording() as records:
        with stream.hold():
            build(stream, sub)
        assert ended.wait(3.0), "the stream never ended"
        feed.ended.set()
        for each in subs:
            each.dispose()
    return {
        "got": got,
        "stats": stream.stats.snapshot(),
        "delimited": (stream.delimited.lengths, stream.delimited.mismatches),
        "records": [
            r
            for r in normal(records, server.url)
            if r[0].startswith("rxtweet.v1") or r[0] == "rxtweet.parse"
        ],
    }


def shown_status(line: bytes) -> Any:
    """:func:`show` of the status ``line`` holds."""
    return show(Status(orjson.loads(line)))


def status(n: int) -> bytes:
    return b'{"in_reply_to_status_id":null,"id":%d,"id_str":"%d","text":"s%d"}' % (n, n, n)


DELETE = b'{"delete":{"status":{"id":9,"id_str":"9","user_id":3,"user_id_str":"3"}}}'
UNKNOWN_V2 = b'{"data":{"id":"1","text":"v2"}}'
JUNK = [b"not json", b"{", b"[1]", b'{"a":NaN}', b"\xff\xfe"]


def both_served(
    servers: list[RawServer],
    groups: list[list[bytes] | bytes],
    build: Callable[[Any, Any], None],
    **params: Any,
) -> tuple[dict[str, Any], int]:
    with way(True) as made:
        new = served_run(servers, groups, build, **params)
    with way(False):
        old = served_run(servers, groups, build, **params)
    assert new == old
    return new, len(made)


def statuses_alone(stream: Any, sub: Any) -> None:
    sub("statuses", stream.statuses)


@pytest.mark.parametrize(
    "where",
    ["first", "middle", "last", "alone", "spaced", "at-12", "at-13", "split"],
)
@pytest.mark.parametrize("code", [2, 12])
def test_disconnect_messages_anywhere_in_a_read(
    servers: list[RawServer], where: str, code: int
) -> None:
    line = disconnect_line(code)
    groups: list[list[bytes] | bytes]
    body = [status(n) for n in range(2, 6)]
    if where == "first":
        groups = [[line, *body], [status(9)]]
    elif where == "middle":
        groups = [[*body[:2], line, *body[2:]], [status(9)]]
    elif where == "last":
        groups = [[*body, line], [status(9)]]
    elif where == "alone":
        groups = [body, [line], [status(9)]]
    elif where == "spaced":
        groups = [[*body[:2], b"   \t" + line, *JUNK, *body[2:]], [status(9)]]
    elif where in ("at-12", "at-13"):
        groups = [[*body[:2], disconnect_line(code, int(where[3:])), *body[2:]], [status(9)]]
    else:  # the line cut in two reads
        whole = b"".join(x + b"\r\n" for x in [*body[:2], line, *body[2:]])
        cut = whole.index(KEY) + 4
        groups = [whole[:cut], whole[cut:], [status(9)]]
    new, made = both_served(servers, groups, statuses_alone)
    assert made  # the projection ran
    fatal = code == 2 and where != "at-13"
    statuses = new["got"]["statuses"]
    assert (statuses[-1][:2] == ("error", "FatalDisconnect")) is fatal
    # After a fatal one nothing more: not the rest of its read, not the next read.
    assert (shown_status(status(9)) in statuses) is not fatal
    assert (shown_status(status(5)) in statuses) is (not fatal or where in ("last", "alone"))


@pytest.mark.parametrize(
    "extra", [None, "deletes", "events", "messages", "disconnect_messages", "statuses"]
)
def test_statuses_with_another_subscriber(servers: list[RawServer], extra: str | None) -> None:
    groups: list[list[bytes] | bytes] = [
        [status(2), DELETE, UNKNOWN_V2, *JUNK, status(3), b""],
        [UNKNOWN_V2] * (UNKNOWN_STREAK_WARNING + 2) + [status(4)],
        [status(5), disconnect_line(12), DELETE, status(6)],
        [DELETE, disconnect_line(7), status(7)],
    ]

    def build(stream: Any, sub: Any) -> None:
        sub("statuses", stream.statuses)
        if extra is not None:
            sub(extra, getattr(stream, extra))

    new, made = both_served(servers, groups, build)
    assert new["got"]["statuses"][-1][1] == "FatalDisconnect"
    assert new["stats"]["malformed"] == len(JUNK)
    assert any("look like API v2" in r[2] for r in new["records"])
    # Alone, statuses is made by the projection: every message after the first read.
    assert made == (0 if extra is not None else sum(len(g) for g in groups) - len(JUNK) - 2)


def test_one_subscriber_switching_the_projection_on_and_off_mid_read(
    servers: list[RawServer],
) -> None:
    # statuses alone (the projection), then from inside its on_next a deletes subscriber
    # (the share's value path), which leaves again mid-read (the projection), then statuses
    # disposes itself mid-read and subscribes a new statuses, which gets the rest.
    groups: list[list[bytes] | bytes] = [
        [status(2), status(3), DELETE, status(4), DELETE, status(5), b"{", status(6)],
        [DELETE, status(7), UNKNOWN_V2, status(8), status(9), DELETE, status(10)],
    ]

    def build(stream: Any, sub: Any) -> None:
        box: dict[str, abc.DisposableBase] = {}

        def on_status(item: Any) -> None:
            if item.id == 3:
                box["deletes"] = sub("deletes", stream.deletes)
            elif item.id == 5:
                box["deletes"].dispose()
            elif item.id == 8:
                # Joins first (else the share would close and the next open afresh).
                sub("late", stream.statuses)
                box["statuses"].dispose()

        box["statuses"] = sub("statuses", stream.statuses, on_status)

    new, made = both_served(servers, groups, build)
    got = new["got"]
    assert [json.loads(x[1])["id"] for x in got["statuses"]] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [x[0] for x in got["deletes"]] == ["DeleteNotice", "DeleteNotice"]
    assert [json.loads(x[1])["id"] for x in got["late"][:2]] == [9, 10]
    assert made >= 8  # the projection took part, before and after the deletes


def test_a_slow_consumer_on_another_thread(servers: list[RawServer]) -> None:
    scheduler = EventLoopScheduler()
    groups: list[list[bytes] | bytes] = [
        [status(n) for n in range(2, 30)],
        [*(status(n) for n in range(30, 40)), disconnect_line(6), status(99)],
    ]

    def slow(_: Any) -> None:
        threading.Event().wait(0.002)

    def build(stream: Any, sub: Any) -> None:
        sub("slow", stream.statuses.pipe(ops.observe_on(scheduler)), slow)

    try:
        new, made = both_served(servers, groups, build)
    finally:
        scheduler.dispose()
    got = new["got"]["slow"]
    assert [json.loads(x[1])["id"] for x in got[:-1]] == list(range(1, 40))
    assert got[-1][1] == "FatalDisconnect"
    assert made == 39


def test_a_subscriber_that_disposes_itself_and_one_that_subscribes_another(
    servers: list[RawServer],
) -> None:
    groups: list[list[bytes] | bytes] = [
        [status(n) for n in range(2, 12)],
        [status(12), DELETE, status(13), disconnect_line(12), status(14)],
        [status(n) for n in range(15, 20)],
    ]

    def build(stream: Any, sub: Any) -> None:
        box: dict[str, abc.DisposableBase] = {}

        def leave_self(item: Any) -> None:
            if item.id == 4:
                box["self"].dispose()

        def leave_other(item: Any) -> None:
            if item.id == 8:
                box["other"].dispose()

        def spawn(item: Any) -> None:
            if item.id == 6:
                sub("spawned-deletes", stream.deletes)
                sub("spawned-ids", stream.statuses.pipe(ops.map(attrgetter("id"))))

        box["self"] = sub("self", stream.statuses, leave_self)
        sub("disposer", stream.statuses, leave_other)
        box["other"] = sub("other", stream.statuses)
        sub("spawner", stream.statuses, spawn)

    new, _ = both_served(servers, groups, build)
    assert new["got"]["spawned-ids"][:2] == ["7", "8"]
    assert new["got"]["self"][-1] == shown_status(status(4))
    assert new["got"]["other"][-1] == shown_status(status(7))


def test_delimited_length_statuses_alone(servers: list[RawServer]) -> None:
    def framed(lines: list[bytes]) -> bytes:
        return b"".join(b"%d\r\n%s\r\n" % (len(x) + 2, x) for x in lines)

    lines = [status(2), UNKNOWN_V2, DELETE, status(3), b"{", status(4)]

    class LengthReads(Reads):
        def __call__(self, conn: socket.socket, _: bytes) -> None:
            parsed = self.parsed
            assert parsed is not None
            conn.sendall(HEAD + chunk(framed([FIRST])))
            wait_until(lambda: parsed() >= 1, 1.0)
            conn.sendall(chunk(framed(lines)))
            half = framed([disconnect_line(6), status(9)])
            conn.sendall(chunk(half[:20]))
            wait_until(lambda: self.ended.is_set() or parsed() >= 7, 0.3)
            conn.sendall(chunk(half[20:]) + b"0\r\n\r\n")

    results = []
    for new in (True, False):
        feed = LengthReads([])
        server = RawServer(feed)
        servers.append(server)
        with way(new) as made:
            stream = Stream(*CREDS, base_url=server.url, reconnect=ONCE).sample_stream(
                delimited="length"
            )
            feed.parsed = parsed_of(stream)
            got: list[Any] = []
            done = threading.Event()

            def on_error(error: Exception) -> None:
                got.append(type(error).__name__)  # noqa: B023
                done.set()  # noqa: B023

            with recording() as records:
                s = stream.statuses.subscribe(
                    lambda x: got.append(show(x)),  # noqa: B023
                    on_error,
                    done.set,
                )
                assert done.wait(3.0)
                feed.ended.set()
                s.dispose()
        assert made or not new  # the projection ran
        results.append(
            (
                got,
                stream.stats.snapshot(),
                stream.delimited.lengths,
                [r for r in normal(records, server.url) if r[0].startswith("rxtweet.v1")],
            )
        )
    assert results[0] == results[1]
    assert results[0][0][-1] == "FatalDisconnect"


# --- the hook face -----------------------------------------------------------------------------


class Recorder(Stream):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[Any] = []

    def on_status(self, status: Status) -> None:
        self.calls.append(("status", status.id))

    def on_delete(self, status_id: int, user_id: int) -> None:
        self.calls.append(("delete", status_id, user_id))

    def on_disconnect_message(self, message: dict[str, Any]) -> None:
        self.calls.append(("disconnect_message", message))

    def on_limit(self, track: int) -> None:
        self.calls.append(("limit", track))

    def on_warning(self, warning: dict[str, Any]) -> None:
        self.calls.append(("warning", warning))

    def on_exception(self, exception: Exception) -> None:
        self.calls.append(("exception", type(exception).__name__, str(exception)))

    def on_keep_alive(self) -> None:
        self.calls.append("keep_alive")

    def on_disconnect(self) -> None:
        self.calls.append("disconnect")


@pytest.mark.parametrize("code", [6, 12])
def test_the_hook_face_is_unchanged(servers: list[RawServer], code: int) -> None:
    groups: list[list[bytes] | bytes] = [
        [status(2), DELETE, b'{"limit":{"track":3}}', *JUNK, UNKNOWN_V2, b""],
        [b'{"warning":{"code":"FALLING_BEHIND","message":"m","percent_full":60}}'],
        [status(3), b"  " + disconnect_line(code), status(4)],
    ]
    results = []
    for new in (True, False):
        feed = Reads(groups)
        server = RawServer(feed)
        servers.append(server)
        with way(new), recording() as records:
            recorder = Recorder(*CREDS, base_url=server.url, reconnect=ONCE)
            recorder.sample()
            feed.ended.set()
        results.append(
            (
                recorder.calls,
                [r for r in normal(records, server.url) if r[0].startswith("rxtweet.v1")],
            )
        )
    assert results[0] == results[1]
    assert ("disconnect_message", json.loads(disconnect_line(code))["disconnect"]) in results[0][0]
