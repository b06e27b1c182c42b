"""The publisher's reading of JetStream's acks, attacked: the "not now" answers
(``_NOT_NOW``: err_codes 10158 "duplicate message id is in process" and 10167 "too many
requests", re-sent like a 503 instead of ending the stream with :class:`PublishError`), and
acks of every other shape.

Attacked as a hostile server (ack answers of every odd shape) and through the pump's retry
accounting (same ``Nats-Msg-Id`` on every re-send, ``stats.retried``, late acks, close while
refused). No NATS: the session is built without ``__init__`` and ``_on_ack`` / ``_pump`` are
driven with fake acks and a fake client. nats-py swallows an exception raised by a
subscription callback (it goes to ``error_cb``, logged at debug), so an ``_on_ack`` that
raises after popping the message from ``inflight`` loses it silently: the stream then
completes as if it had been acked. Every break found here was fixed (``_refusal``): an ack of
any shape ends up retried, counted or failing the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import orjson
import pytest

from rxtweet.handoff import Handoff
from rxtweet.nats import jetstream
from rxtweet.nats.jetstream import PublishError, PublishStats, _Pending, _PublishSession

pytest.importorskip("nats")


class _Ack:
    """What nats-py hands ``_on_ack``: the reply subject, headers and the raw answer."""

    def __init__(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.subject = subject
        self.headers = headers
        self.data = data


def _session(*tokens: str) -> Any:
    """A publish session with one message in flight per token (no loop, no NATS)."""
    session: Any = object.__new__(_PublishSession)
    session.prefix = "_INBOX.test."
    session.inflight = {
        token: _Pending(b'{"data":{}}', {"Nats-Msg-Id": f"id{token}"}) for token in tokens
    }
    session.retries = deque()
    session.stats = PublishStats()
    session.stats.handed = len(tokens)
    session.handoff = Handoff(4, "block")
    session.fatal = None
    session.on_fatal = None
    session.closing = False
    session.wake = None
    return session


def _answer(session: Any, token: str, data: bytes) -> BaseException | None:
    """``_on_ack`` as nats-py runs it: an exception is swallowed (and returned here)."""
    try:
        asyncio.run(session._on_ack(_Ack(session.prefix + token, data)))
    except Exception as exc:  # nats-py's _wait_for_msgs does the same
        return exc
    return None


def _outcome(session: Any) -> str:
    """Where the one message went; ``"lost"`` if nowhere (neither kept nor counted)."""
    stats = session.stats
    places = {
        "inflight": len(session.inflight),
        "retry": len(session.retries),
        "published": stats.published,
        "duplicate": stats.duplicates,
        "fatal": stats.unconfirmed if isinstance(session.fatal, PublishError) else 0,
    }
    held = [name for name, count in places.items() if count]
    assert sum(places.values()) <= 1, places  # never counted twice
    return held[0] if held else "lost"


def _error(**error: Any) -> bytes:
    return orjson.dumps({"error": error})


# -- 1. odd ack shapes: a clear outcome, never a crash or a silent drop --------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Untouched by the change (same outcome as before it).
        (_error(code=409, err_code="10158", description="in process"), "retry"),  # digits
        (_error(code=409, description="no err_code"), "fatal"),
        (_error(code=409, err_code=None, description="null err_code"), "fatal"),
        (_error(code=None, err_code=10071, description="null code"), "retry"),
        (_error(err_code=10071, description="no code"), "retry"),
        (_error(code="503", err_code=10008, description="string code"), "retry"),
        (_error(code=400.7, err_code=10071, description="float code"), "retry"),  # no code
        (_error(code=400, err_code=10071, description="wrong last sequence"), "fatal"),
        (_error(code=503, err_code=10158, description="5xx anyway"), "retry"),
        (orjson.dumps({"error": None, "stream": "S", "seq": 1}), "published"),
        (orjson.dumps({"stream": "S", "seq": 1, "duplicate": True}), "duplicate"),
        (b"not json", "retry"),
        # Changed by it: a "not now" err_code is re-sent whatever its code looks like.
        (_error(code=409, err_code=10158, description="in process"), "retry"),
        (_error(code=429, err_code=10167, description="too many requests"), "retry"),
        (_error(code="409", err_code=10158, description="string code"), "retry"),
        (_error(code=409.0, err_code=10158.0, description="float codes"), "retry"),
        (_error(code=None, err_code=10158, description="null code"), "retry"),
        (_error(code=400, err_code=10167, description="odd code"), "retry"),
    ],
)
def test_an_odd_ack_has_a_clear_outcome(data: bytes, expected: str) -> None:
    session = _session("7")
    told: list[BaseException] = []
    session.on_fatal = told.append
    assert _answer(session, "7", data) is None
    assert _outcome(session) == expected
    if expected == "fatal":
        assert told == [session.fatal] and session.handoff.closed
    else:
        assert session.fatal is None and not session.handoff.closed
    if expected == "retry":  # the same message (same Nats-Msg-Id) goes again
        assert [p.headers["Nats-Msg-Id"] for _, p in session.retries] == ["id7"]


@pytest.mark.parametrize("err_code", [[10158], {"n": 10158}], ids=["list", "dict"])
def test_an_unhashable_err_code_is_not_a_silent_drop(err_code: Any) -> None:
    session = _session("7")
    raised = _answer(session, "7", _error(code=409, err_code=err_code, description="x"))
    assert raised is None
    assert _outcome(session) in ("retry", "fatal")


@pytest.mark.parametrize(
    "data",
    [
        orjson.dumps({"error": "boom"}),
        orjson.dumps({"error": ["boom"]}),
        orjson.dumps({"error": 409}),
        orjson.dumps({"error": True}),
        _error(code="conflict", err_code=10071, description="x"),
        _error(code=[409], err_code=10071, description="x"),
        _error(code={"n": 409}, err_code=10158, description="x"),
        b"null",
        b"[]",
        b"42",
        b'"ok"',
        # Strings str.isdigit takes and int() refuses (a review of the fix found these).
        _error(code="\u00b2", err_code=10071, description="x"),
        _error(code="9" * 5000, err_code=10071, description="x"),
        _error(code=409, err_code="\u00b9" * 5, description="x"),
    ],
    ids=[
        "error-str",
        "error-list",
        "error-int",
        "error-true",
        "code-word",
        "code-list",
        "code-dict",
        "answer-null",
        "answer-list",
        "answer-int",
        "answer-str",
        "code-superscript",
        "code-5000-digits",
        "err-code-superscript",
    ],
)
def test_a_malformed_ack_is_not_a_silent_drop(data: bytes) -> None:
    session = _session("7")
    raised = _answer(session, "7", data)
    assert raised is None
    assert _outcome(session) in ("retry", "fatal")


# -- 2. retry accounting through the pump ------------------------------------------------


class _Publisher:
    max_pending = 4
    ack_timeout = 0.08  # tick 0.02 s


class _FakeClient:
    """Records every publish and answers it with ``respond(msg_id, attempt)`` (bytes, or
    None: no answer) on the next loop turn, as nats-py would run the callback."""

    is_connected = True

    def __init__(self, session: Any, respond: Any) -> None:
        self.session = session
        self.respond = respond
        self.sent: list[tuple[str, str]] = []  # (Nats-Msg-Id, reply)
        self.later: list[tuple[str, bytes]] = []  # answers held back by respond

    async def publish(self, subject: str, raw: bytes, reply: str, headers: dict[str, str]) -> None:
        msg_id = headers["Nats-Msg-Id"]
        attempt = sum(1 for sent, _ in self.sent if sent == msg_id)
        self.sent.append((msg_id, reply))
        data = self.respond(msg_id, attempt, reply, self)
        if data is not None:
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.deliver(reply, data))
            )

    async def deliver(self, reply: str, data: bytes) -> None:
        with contextlib.suppress(Exception):  # as nats-py (error_cb)
            await self.session._on_ack(_Ack(reply, data))


def _pumping(monkeypatch: pytest.MonkeyPatch, ids: list[str], respond: Any) -> tuple[Any, Any]:
    monkeypatch.setattr(jetstream, "_RETRY_DELAY", 0.001)
    monkeypatch.setattr(jetstream, "_MAX_RETRY_DELAY", 0.001)
    session = _session()
    session.publisher = _Publisher()
    session.subject = "tweets.test"
    session.handoff = Handoff(16, "block")
    for msg_id in ids:
        session.handoff.put(_Pending(b"{}", {"Nats-Msg-Id": msg_id}))
        session.stats.handed += 1
    client = _FakeClient(session, respond)
    session.client = client
    return session, client


async def _run_pump(session: Any, *, close_after: float | None = None) -> None:
    session.wake = asyncio.Event()
    pump = asyncio.ensure_future(session._pump())
    if close_after is not None:
        await asyncio.sleep(close_after)
        session.closing = True
        session.wake.set()
    await asyncio.wait_for(pump, 3.0)
    session._give_up()


NOT_NOW = {
    10158: _error(code=409, err_code=10158, description="duplicate message id is in process"),
    10167: _error(code=429, err_code=10167, description="too many requests"),
}
STORED = orjson.dumps({"stream": "S", "seq": 1})
DUPLICATE = orjson.dumps({"stream": "S", "seq": 1, "duplicate": True})


def test_a_message_refused_not_now_many_times_goes_again_with_its_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusals = {"a": 6, "b": 3, "c": 0}

    def respond(msg_id: str, attempt: int, reply: str, client: Any) -> bytes:
        if attempt < refusals[msg_id]:
            return NOT_NOW[10158 if attempt % 2 else 10167]
        return DUPLICATE if msg_id == "a" else STORED

    session, client = _pumping(monkeypatch, ["a", "b", "c"], respond)
    session.handoff.finish(None)
    asyncio.run(_run_pump(session))
    assert session.fatal is None
    sent_ids = [msg_id for msg_id, _ in client.sent]
    assert {i: sent_ids.count(i) for i in refusals} == {"a": 7, "b": 4, "c": 1}
    assert len({reply for _, reply in client.sent}) == len(client.sent)  # a new token each
    stats = session.stats
    assert stats.retried == 9
    assert (stats.published, stats.duplicates, stats.unconfirmed) == (2, 1, 0)
    assert stats.pending == 0


def test_a_message_refused_until_close_is_counted_unconfirmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def respond(msg_id: str, attempt: int, reply: str, client: Any) -> bytes:
        return NOT_NOW[10158] if msg_id == "a" else STORED

    session, client = _pumping(monkeypatch, ["a", "b"], respond)
    session.handoff.finish(None)
    asyncio.run(_run_pump(session, close_after=0.3))
    stats = session.stats
    assert session.fatal is None
    assert stats.retried >= 3 and stats.retried == len(client.sent) - 2
    assert {msg_id for msg_id, _ in client.sent} == {"a", "b"}
    assert (stats.published, stats.duplicates, stats.unconfirmed) == (1, 0, 1)
    assert stats.pending == 0 and not session.inflight and not session.retries


def test_a_late_ack_for_a_token_already_sent_again_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first copy's answers (a "not now", then "stored") come only after its ack
    # timed out and it was sent again; the second copy is answered as a duplicate.
    def respond(msg_id: str, attempt: int, reply: str, client: Any) -> bytes | None:
        if attempt == 0:
            client.later.append((reply, NOT_NOW[10158]))
            client.later.append((reply, STORED))
            return None
        for late_reply, data in client.later:  # the late answers, before this one's
            asyncio.get_running_loop().call_soon(
                lambda r=late_reply, d=data: asyncio.ensure_future(client.deliver(r, d))
            )
        return DUPLICATE

    session, client = _pumping(monkeypatch, ["a"], respond)
    session.handoff.finish(None)
    asyncio.run(_run_pump(session))
    stats = session.stats
    assert [msg_id for msg_id, _ in client.sent] == ["a", "a"]
    assert stats.retried == 1
    assert (stats.published, stats.duplicates, stats.unconfirmed) == (0, 1, 0)


def test_a_late_not_now_for_a_message_waiting_to_go_again_adds_no_copy() -> None:
    session = _session("1")
    # Its ack timed out: the pump moved it to the retries (as _pump does).
    session.retries.append((0.0, session.inflight.pop("1")))
    assert _answer(session, "1", NOT_NOW[10158]) is None
    assert len(session.retries) == 1 and not session.inflight
    assert _answer(session, "1", STORED) is None
    assert session.stats.published == 0 and len(session.retries) == 1
