"""Hardening of the API v1.1 client (issue 10 items 7, 8, 10, 11; issue 11 items 7, 13).

Bad notices are malformed messages, never the end of a stream; a broken
``delimited=length`` length line is a framing error that reconnects; credentials are
cleaned at construction; a blocking wait inside ``hold()`` raises instead of hanging; a
stream that is not v1.1 says so once. Wire faults run over a real local FakeStreamServer.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import from_iterable
from reactivex import operators as ops
from support import reader_threads, wait_until
from test_v1 import ARCHIVE, AT, ATS, CK, CS, FAST, Collect, OAuthVerifier, framed, key_of

from rxtweet import MalformedMessage, Reconnecting, RxTweetException
from rxtweet.parse import REASON_CONVERT, Parsed, ParseStats, parse_lines
from rxtweet.status import (
    DeleteNotice,
    DisconnectNotice,
    LimitNotice,
    Notice,
    ScrubGeoNotice,
    StallWarning,
    Status,
    StatusWithheldNotice,
    UnknownNotice,
    UserWithheldNotice,
    is_v1_data,
    to_v1_message,
)
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.v1 import (
    UNKNOWN_STREAK_WARNING,
    DelimitedStats,
    FatalDisconnect,
    LengthFramingError,
    Stream,
    _end_on_fatal_disconnect,
    _watching_unknown,
    length_delimited,
)

DATA = Path(__file__).parent / "data"

#: Notices with a value of the wrong type; ``1e999`` decodes to ``inf``.
BAD_NOTICES = [
    b'{"limit":{"track":"many"}}',
    b'{"limit":{"track":1e999}}',
    b'{"disconnect":{"code":1e999,"stream_name":"s","reason":"r"}}',
    b'{"delete":{"status":{"id":"abc","user_id":1}}}',
    b'{"delete":{"status":{"id":1,"user_id":[2]}}}',
    b'{"scrub_geo":{"user_id":{},"up_to_status_id":2}}',
    b'{"status_withheld":{"id":1,"user_id":2,"withheld_in_countries":"DE"}}',
    b'{"user_withheld":{"id":true,"withheld_in_countries":[]}}',
    b'{"warning":{"code":"FALLING_BEHIND","percent_full":"lots"}}',
    b'{"in_reply_to_status_id":null,"id":"abc","user":{},"text":"x"}',
]


# --- item 7: bad notices are malformed messages -----------------------------------------------


class Hooks(Stream):
    """Records what the tweepy hooks saw."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statuses: list[int] = []
        self.limits: list[Any] = []
        self.exceptions: list[Exception] = []
        self.events: list[Any] = []
        self.disconnected = threading.Event()

    def on_status(self, status: Status) -> None:
        self.statuses.append(status.id)
        if len(self.statuses) == 3:
            self.disconnect()

    def on_limit(self, track: int) -> None:
        self.limits.append(track)

    def on_exception(self, exception: Exception) -> None:
        self.exceptions.append(exception)

    def on_event(self, event: Any) -> None:
        self.events.append(event)

    def on_disconnect(self) -> None:
        self.disconnected.set()


def test_bad_notices_do_not_end_a_real_v1_stream_tweepy_face() -> None:
    messages = [*BAD_NOTICES, b'{"limit":{"track":7}}', *ARCHIVE[:3]]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05) as srv:
        client = Hooks(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST)
        thread = client.sample(threaded=True)
        assert thread is not None
        thread.join(5)
        assert not thread.is_alive()
    assert client.exceptions == []
    assert client.statuses == [key_of(line)[1] for line in ARCHIVE[:3]]
    assert client.limits == [7]
    malformed = [e for e in client.events if isinstance(e, MalformedMessage)]
    assert [e.raw for e in malformed] == BAD_NOTICES
    assert {e.reason for e in malformed} == {REASON_CONVERT}
    assert wait_until(lambda: not reader_threads())


def test_bad_notices_do_not_end_a_real_v1_stream_reactive_face(
    caplog: pytest.LogCaptureFixture,
) -> None:
    messages = [*BAD_NOTICES, *ARCHIVE[:3]]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05) as srv:
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).sample_stream()
        events: list[Any] = []
        limits: list[Any] = []
        with stream.hold():
            watching = [
                stream.events.subscribe(events.append),
                stream.limits.subscribe(limits.append),
            ]
            ids = Collect(stream.statuses.pipe(ops.map(lambda s: s.id), ops.take(3)))
        assert ids.wait() == [key_of(line)[1] for line in ARCHIVE[:3]]
        for subscription in watching:
            subscription.dispose()
    assert limits == []
    assert stream.stats.malformed == len(BAD_NOTICES)
    assert stream.stats.by_reason == {REASON_CONVERT: len(BAD_NOTICES)}
    assert [e.raw for e in events if isinstance(e, MalformedMessage)] == BAD_NOTICES
    assert "limit.track is str, not an integer" in caplog.text


#: Every documented field of every notice, with a valid inner object to vary it in.
VALID_NOTICES: dict[str, dict[str, Any]] = {
    "delete": {
        "status": {"id": 1, "id_str": "1", "user_id": 2, "user_id_str": "2"},
        "timestamp_ms": "1",
    },
    "limit": {"track": 5, "timestamp_ms": "1"},
    "disconnect": {"code": 4, "stream_name": "s", "reason": "r"},
    "warning": {"code": "FALLING_BEHIND", "message": "m", "percent_full": 60},
    "scrub_geo": {"user_id": 1, "up_to_status_id": 2},
    "status_withheld": {"id": 1, "user_id": 2, "withheld_in_countries": ["DE"]},
    "user_withheld": {"id": 1, "withheld_in_countries": ["DE"]},
}
FIELD_PATHS = [
    (kind, path)
    for kind, inner in VALID_NOTICES.items()
    for path in [
        *[(key,) for key in inner],
        *[(key, sub) for key, value in inner.items() if isinstance(value, dict) for sub in value],
    ]
]

_INF, _BIG = "\x00INF\x00", "\x00BIG\x00"
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from([_INF, _BIG, "", "12", "-3", "1e999", "9" * 5000]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _line(kind: str, path: tuple[str, ...], value: Any) -> bytes:
    doc = json.loads(json.dumps({kind: VALID_NOTICES[kind]}))
    target = doc[kind]
    for key in path[:-1]:
        target = target[key]
    if value is _MISSING:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    text = json.dumps(doc)
    # Literals json.dumps cannot make: a number beyond floats (-> inf) and 5,000 digits.
    return text.replace(f'"{_INF}"', "1e999").replace(f'"{_BIG}"', "9" * 5000).encode()


_MISSING = object()


def _read_every_attribute(message: Notice | Status) -> None:
    for name in dir(type(message)):
        if name.startswith("_") or name in ("get", "items", "keys", "values"):
            continue
        try:
            getattr(message, name)
        except AttributeError:
            # An absent optional key of a Status (tweepy's hasattr idiom); a notice's
            # documented fields are all checked, so only Status may do this.
            assert isinstance(message, Status), name


@settings(max_examples=400, deadline=None)
@given(
    field=st.sampled_from(FIELD_PATHS),
    value=JSON_VALUES | st.just(_MISSING),
)
def test_any_json_in_any_notice_field_is_a_message_or_a_counted_malformed_line(
    field: tuple[str, tuple[str, ...]], value: Any
) -> None:
    kind, path = field
    line = _line(kind, path, value)
    stats = ParseStats()
    logging.disable(logging.WARNING)
    try:
        items = (
            from_iterable([line])
            .pipe(
                _end_on_fatal_disconnect(frozenset({2, 6, 7})),
                parse_lines(_watching_unknown(), stats, keep_raw=True),
                ops.to_list(),
            )
            .run()
        )
    except FatalDisconnect:
        # By design: a valid fatal code (2, 6, 7) ends the stream; nothing else may.
        items = None
    finally:
        logging.disable(logging.NOTSET)
    if items is None:
        assert kind == "disconnect" and path == ("code",)
        assert DisconnectNotice({"code": value}).code in (2, 6, 7)
        return
    assert len(items) == 1
    item = items[0]
    if type(item) is MalformedMessage:
        assert item.reason == REASON_CONVERT and stats.malformed == 1
        return
    assert type(item) is Parsed and stats.malformed == 0
    message = item.value
    _read_every_attribute(message)
    # The typed fields have their types.
    if type(message) is LimitNotice:
        assert type(message.track) is int
    if type(message) is DeleteNotice:
        assert type(message.id) is int and type(message.user_id) is int
        assert type(message.id_str) is str and type(message.user_id_str) is str
    if type(message) is DisconnectNotice:
        assert message.code is None or type(message.code) is int
        assert isinstance(message.meaning, str)
    if type(message) in (ScrubGeoNotice, StatusWithheldNotice, UserWithheldNotice):
        assert all(
            type(getattr(message, f)) is int
            for f in ("id", "user_id", "up_to_status_id")
            if f in message.data
        )
    if type(message) is StallWarning:
        assert message.percent_full is None or type(message.percent_full) is int
    # tweepy's hooks (the default ones) get it without raising.
    client = Stream("a", "b", "c", "d", base_url="http://127.0.0.1:9")
    logging.disable(logging.CRITICAL)
    try:
        client._dispatch(message, line)
    finally:
        logging.disable(logging.NOTSET)


def test_is_v1_data() -> None:
    status = to_v1_message(orjson.loads(ARCHIVE[0]))
    assert is_v1_data(status)
    assert is_v1_data(to_v1_message({"delete": {"status": {"id": 1, "user_id": 2}}}))
    assert is_v1_data(to_v1_message({"limit": {"track": 3}}))
    assert not is_v1_data(to_v1_message({"disconnect": {"code": 1}}))
    assert not is_v1_data(to_v1_message({"warning": {"code": "FALLING_BEHIND"}}))
    assert not is_v1_data(UnknownNotice({"data": {}}))


# --- item 8: a length line that is no length -----------------------------------------------------


@pytest.mark.parametrize("bad", [b"9" * 4301, b"9" * 20, b"-12", b"+12", b"12a", b"67108867"])
def test_a_length_line_that_is_no_length_is_a_framing_error(bad: bytes) -> None:
    out: list[bytes] = []
    errors: list[Exception] = []
    from_iterable([b"10", b'{"a":12}', bad, b"10", b'{"a":12}']).pipe(
        length_delimited(DelimitedStats())
    ).subscribe(out.append, errors.append)
    assert out == [b'{"a":12}']
    assert len(errors) == 1 and isinstance(errors[0], LengthFramingError)
    assert len(str(errors[0])) < 200  # the 4,301 digits are not repeated


def test_a_4301_digit_length_line_reconnects_over_a_real_server(verifier: OAuthVerifier) -> None:
    messages = [framed(ARCHIVE[0]), b"9" * 4301, framed(ARCHIVE[1]), framed(ARCHIVE[2])]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05, verify_v1=verifier) as srv:
        srv.script(Attempt(messages=2, ending="hold"), Attempt(ending="hold"))
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).sample_stream(
            delimited="length"
        )
        events: list[Any] = []
        with stream.hold():
            watching = stream.events.subscribe(events.append)
            ids = Collect(stream.statuses.pipe(ops.map(lambda s: s.id), ops.take(3)))
        assert ids.wait() == [key_of(line)[1] for line in ARCHIVE[:3]]
        watching.dispose()
        assert len(srv.stream_requests) == 2
    reconnects = [e for e in events if isinstance(e, Reconnecting)]
    assert len(reconnects) == 1 and isinstance(reconnects[0].cause, LengthFramingError)
    assert stream.delimited.mismatches == 0


@pytest.fixture
def verifier() -> OAuthVerifier:
    return OAuthVerifier()


# --- item 10: credentials ------------------------------------------------------------------


def test_credentials_are_stripped_and_still_sign(verifier: OAuthVerifier) -> None:
    with FakeStreamServer(messages=ARCHIVE[:1], keepalive_interval=0.05, verify_v1=verifier) as srv:
        client = Stream(CK + "\r", CS + "\r\n", " " + AT, ATS + "\r", base_url=srv.url)
        assert (client.consumer_key, client.consumer_secret) == (CK, CS)
        assert (client.access_token, client.access_token_secret) == (AT, ATS)
        client.sample_stream().statuses.pipe(ops.take(1)).run()
    assert verifier.checked[0]["ok"]


@pytest.mark.parametrize("position", range(4))
def test_a_control_character_in_a_credential_is_refused_without_echoing_it(position: int) -> None:
    names = ["consumer_key", "consumer_secret", "access_token", "access_token_secret"]
    creds = [CK, CS, AT, ATS]
    creds[position] = "s3cr3t\x00value"
    with pytest.raises(ValueError, match=names[position]) as raised:
        Stream(*creds)
    assert "s3cr3t" not in str(raised.value) and "value" not in str(raised.value)


def test_empty_credentials_keep_their_type_error() -> None:
    with pytest.raises(TypeError, match="access_token must be a non-empty string"):
        Stream(CK, CS, "", ATS)
    with pytest.raises(ValueError, match="consumer_key is empty"):
        Stream(" \r\n", CS, AT, ATS)


# --- item 11: base_url userinfo ---------------------------------------------------------------


def test_repr_redacts_userinfo_in_base_url() -> None:
    client = Stream(CK, CS, AT, ATS, base_url="http://alice:pa55word@127.0.0.1:9")
    text = repr(client)
    assert "pa55word" not in text and "alice" not in text
    assert "127.0.0.1:9" in text
    for secret in (CK, CS, AT, ATS):
        assert secret not in text


# --- issue 11 item 7: blocking inside hold() ---------------------------------------------


@pytest.mark.parametrize("which", ["statuses", "items", "messages", "events"])
def test_run_inside_hold_raises_instead_of_hanging(
    which: str, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeStreamServer(messages=ARCHIVE[:3], keepalive_interval=0.05) as srv:
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).sample_stream()
        outcome: list[Any] = []

        def block() -> None:
            try:
                with stream.hold():
                    getattr(stream, which).pipe(ops.take(1)).run()
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=block, daemon=True)
        thread.start()
        thread.join(2)
        assert not thread.is_alive(), ".run() inside hold() hung"
        assert len(outcome) == 1
        # stream.events too: it completes on the stream's own failures, but not on this one.
        assert isinstance(outcome[0], RxTweetException)
        assert "after" in str(outcome[0]) and "hold" in str(outcome[0])
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "call .run() (or await) after it" in errors[0].getMessage()
        # Nothing connected, and the stream still works after the block.
        assert srv.stream_requests == []
        assert stream.statuses.pipe(ops.take(1)).run().id == key_of(ARCHIVE[0])[1]


def test_subscribing_inside_hold_and_running_after_still_works() -> None:
    with FakeStreamServer(messages=ARCHIVE[:3], keepalive_interval=0.05) as srv:
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).sample_stream()
        with stream.hold():
            first = Collect(stream.statuses.pipe(ops.take(2)))
        assert len(first.wait()) == 2


# --- issue 11 item 13: not a v1.1 stream ------------------------------------------------


def test_v2_lines_on_a_v1_stream_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    v2 = [
        orjson.dumps({"data": {"id": str(i), "text": "t"}, "matching_rules": []})
        for i in range(UNKNOWN_STREAK_WARNING + 15)
    ]
    caplog.set_level(logging.DEBUG, logger="rxtweet.v1")
    with FakeStreamServer(messages=v2, keepalive_interval=0.05) as srv:
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).sample_stream()
        unknown = stream.events.pipe(
            ops.filter(lambda e: type(e).__name__ == "UnknownMessage"),
            ops.take(len(v2)),
            ops.to_list(),
        ).run()
    assert len(unknown) == len(v2)
    records = [r for r in caplog.records if r.name == "rxtweet.v1"]
    looks = [r for r in records if "does not look like API v1.1" in r.getMessage()]
    assert len(looks) == 1 and looks[0].levelno == logging.WARNING
    assert "API v2" in looks[0].getMessage()
    per_line = [r for r in records if r.getMessage().startswith("Received unknown message type")]
    assert len(per_line) == len(v2)
    assert sum(r.levelno == logging.WARNING for r in per_line) == UNKNOWN_STREAK_WARNING


def test_a_few_unknown_messages_do_not_warn_about_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    convert = _watching_unknown(limit=3)
    for _ in range(5):
        convert({"friends": []})
        convert({"friends": []})
        convert(orjson.loads(ARCHIVE[0]))  # a status ends the run of unknown messages
    assert "does not look like" not in caplog.text
