"""The v1.1 Stream against FakeStreamServer: OAuth 1.0a verified server-side, both faces.

Every request in these tests is checked by the server the way X checks it: the OAuth 1.0a
HMAC-SHA1 signature is recomputed from the Authorization header, the query and the form
body with oauthlib's signature functions, and a mismatch is answered 401.

Messages: real recordings from tests/data (see SOURCES.md). The message types that no
recording has (``status_withheld``, ``user_withheld``, ``disconnect``, and ``limit``/``warning``
with ``timestamp_ms``) are CRAFTED from the documented shapes, in
tests/data/v1_crafted_notices.jsonl (not a recording; see tests/data/SOURCES.md).
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import requests
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape
from reactivex import from_iterable
from reactivex import operators as ops
from requests_oauthlib import OAuth1
from support import wait_until

import rxtweet.v1
from rxtweet import (
    Closed,
    Connected,
    Disconnected,
    Errored,
    KeepAlive,
    MalformedMessage,
    Reconnecting,
    ReconnectPolicy,
    RequestFailed,
    TooManyRequests,
    Unauthorized,
)
from rxtweet.basestream import StreamAlreadyRunning
from rxtweet.framing import ChunkedDecoder
from rxtweet.status import (
    DeleteNotice,
    DisconnectNotice,
    LimitNotice,
    ScrubGeoNotice,
    StallWarning,
    Status,
    StatusWithheldNotice,
    UnknownNotice,
    UserWithheldNotice,
)
from rxtweet.testing import Attempt, FakeStreamServer, RecordedRequest
from rxtweet.v1 import (
    DelimitedStats,
    FatalDisconnect,
    Stream,
    UnknownMessage,
    V1Stream,
    filter_params,
    length_delimited,
)

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"
ARCHIVE = [
    line
    for line in (DATA / "archiveteam_sample_2021-01-01T0729Z_first60.jsonl")
    .read_bytes()
    .split(b"\r\n")
    if line
]
SFERIK = [
    line
    for line in (DATA / "sferik-twitter_track_streaming_user.jsonl").read_bytes().split(b"\r\n")
    if line
]
OBAMA_SHARED = SHARED / "data/real/http/sfm-utils_filter_track-obama_2015-12-02T2004Z.decoded.jsonl"
OBAMA_HTTP = DATA / "sfm-utils_filter_track-obama_2015-12-02T2004Z.response.http"

#: CRAFTED from the documented shapes, not recordings (see tests/data/SOURCES.md).
CRAFTED = {
    next(iter(doc)): doc
    for doc in map(orjson.loads, (DATA / "v1_crafted_notices.jsonl").read_bytes().splitlines())
}

CK, CS, AT, ATS = "ck-CONSUMERKEY1", "cs-CONSUMERSECRET2", "at-ACCESSTOKEN3", "ats-TOKENSECRET4"
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05, rate_limit_wait_start=0.1)


def key_of(line: bytes) -> tuple[str, int]:
    """("status", id) or ("delete", status id) of an archive line."""
    doc = orjson.loads(line)
    if "delete" in doc:
        return "delete", doc["delete"]["status"]["id"]
    return "status", doc["id"]


def key_of_message(message: Any) -> tuple[str, int]:
    return ("delete", message.id) if isinstance(message, DeleteNotice) else ("status", message.id)


def crafted(name: str) -> bytes:
    return orjson.dumps(CRAFTED[name])


def disconnect(code: int, reason: str = "test") -> bytes:
    return orjson.dumps({"disconnect": {"code": code, "stream_name": "s-1", "reason": reason}})


class Collect:
    """Subscribes now (e.g. inside ``hold()``); :meth:`wait` returns the items afterwards."""

    def __init__(self, observable: Any) -> None:
        self.items: list[Any] = []
        self.error: Exception | None = None
        self.done = threading.Event()
        observable.subscribe(self.items.append, self._on_error, self.done.set)

    def _on_error(self, error: Exception) -> None:
        self.error = error
        self.done.set()

    def wait(self, timeout: float = 5.0) -> list[Any]:
        assert self.done.wait(timeout), "the observable did not end in time"
        if self.error is not None:
            raise self.error
        return self.items


# --- the server's side of OAuth 1.0a ---------------------------------------------------------


class OAuthVerifier:
    """Checks each request's OAuth 1.0a HMAC-SHA1 signature with oauthlib, as X does.

    The parameters are collected from the Authorization header, the query and (when the
    request is form-encoded) the body; ``checked`` keeps, per request, whether it verified
    and which non-OAuth parameters were signed.
    """

    def __init__(self, ck: str = CK, cs: str = CS, at: str = AT, ats: str = ATS) -> None:
        self.ck, self.cs, self.at, self.ats = ck, cs, at, ats
        self.checked: list[dict[str, Any]] = []
        self.nonces: set[str] = set()

    def __call__(self, request: RecordedRequest) -> bool:
        header = request.header("authorization") or ""
        result: dict[str, Any] = {"ok": False, "signed": set()}
        self.checked.append(result)
        if not header.startswith("OAuth "):
            return False
        oauth = {k: unescape(v) for k, v in parse_authorization_header(header)}
        query = urlencode([(k, v) for k, values in request.query.items() for v in values])
        ctype = request.header("content-type") or ""
        body = (
            request.body.decode() if ctype.startswith("application/x-www-form-urlencoded") else ""
        )
        uri = f"http://{request.header('host')}{request.path}" + (f"?{query}" if query else "")
        signed = OAuthRequest(
            uri, http_method=request.method, body=body, headers={"Authorization": header}
        )
        signed.params = signature.collect_parameters(
            uri_query=query,
            body=body,
            headers={"Authorization": header},
            exclude_oauth_signature=True,
        )
        signed.signature = oauth.get("oauth_signature", "")
        result["signed"] = {k for k, _ in signed.params if not k.startswith("oauth_")}
        result["ok"] = ok = (
            signature.verify_hmac_sha1(signed, self.cs, self.ats)
            and oauth.get("oauth_consumer_key") == self.ck
            and oauth.get("oauth_token") == self.at
            and oauth.get("oauth_signature_method") == "HMAC-SHA1"
            and abs(int(oauth.get("oauth_timestamp", "0")) - time.time()) < 300
            and oauth.get("oauth_nonce") not in self.nonces
        )
        self.nonces.add(oauth.get("oauth_nonce", ""))
        return bool(ok)


@pytest.fixture
def verifier() -> OAuthVerifier:
    return OAuthVerifier()


@pytest.fixture
def fake_stream_server_options(verifier: OAuthVerifier) -> dict[str, Any]:
    """The options of ``server`` (tests/conftest.py): v1.1 requests checked by ``verifier``."""
    return {"messages": ARCHIVE, "keepalive_interval": 0.05, "verify_v1": verifier}


def make(server: FakeStreamServer, cls: type[Stream] = Stream, **kw: Any) -> Any:
    kw.setdefault("reconnect", FAST)
    creds = kw.pop("creds", (CK, CS, AT, ATS))
    return cls(*creds, base_url=server.url, **kw)


# --- signing -------------------------------------------------------------------------------------


def test_filter_is_a_signed_form_post(server: FakeStreamServer, verifier: OAuthVerifier) -> None:
    stream = make(server).filter_stream(
        track=["python", "café au lait"], follow=[783214, "6253282"], languages=["en", "fr"]
    )
    statuses = stream.statuses.pipe(ops.take(3), ops.to_list()).run()
    assert [s.id for s in statuses] == [key_of(line)[1] for line in ARCHIVE[:3]]
    request = server.stream_requests[0]
    assert (request.method, request.path, request.query) == (
        "POST",
        "/1.1/statuses/filter.json",
        {},
    )
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert request.form == {
        "follow": ["783214,6253282"],
        "track": ["python,café au lait"],
        "language": ["en,fr"],
    }
    assert verifier.checked[0] == {"ok": True, "signed": {"follow", "track", "language"}}


def test_sample_is_a_signed_get_with_query(
    server: FakeStreamServer, verifier: OAuthVerifier
) -> None:
    client = make(server)
    stream = client.sample_stream(languages=["en"], stall_warnings=True)
    stream.statuses.pipe(ops.take(1)).run()
    request = server.stream_requests[0]
    assert request.header("user-agent") == client.user_agent
    assert (request.method, request.path) == ("GET", "/1.1/statuses/sample.json")
    assert request.query == {"language": ["en"], "stall_warnings": ["true"]}
    assert request.body == b""
    assert verifier.checked[0] == {"ok": True, "signed": {"language", "stall_warnings"}}


def test_the_verifier_rejects_an_unsigned_form_body(server: FakeStreamServer) -> None:
    """Negative control: the same form POST signed without its body is refused, so the
    passing tests above prove that the client signed the body."""
    url = server.url + "/1.1/statuses/filter.json"
    with requests.Session() as session:
        unsigned = requests.Request("POST", url, auth=OAuth1(CK, CS, AT, ATS)).prepare()
        unsigned.prepare_body({"track": "python"}, None)  # the body added after signing
        assert unsigned.headers["Content-Type"] == "application/x-www-form-urlencoded"
        response = session.send(unsigned, stream=True, timeout=5)
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == 32
        wrong = session.post(
            url, data={"track": "python"}, auth=OAuth1(CK, "nope", AT, ATS), stream=True, timeout=5
        )
        assert wrong.status_code == 401
        right = session.post(
            url, data={"track": "python"}, auth=OAuth1(CK, CS, AT, ATS), stream=True, timeout=5
        )
        assert right.status_code == 200
        right.close()


def test_wrong_secret_is_unauthorized_after_one_attempt(server: FakeStreamServer) -> None:
    stream = make(server, creds=(CK, "wrong-secret", AT, ATS)).filter_stream(track=["python"])
    events: list[Any] = []
    with stream.hold():
        stream.events.subscribe(events.append)
        statuses = Collect(stream.statuses)
    with pytest.raises(Unauthorized) as caught:
        statuses.wait()
    assert caught.value.status_code == 401
    assert caught.value.api_codes == [32]
    assert [type(e) for e in events] == [RequestFailed, Errored, Disconnected]
    time.sleep(0.15)  # a retry would come after FAST's 0.05 s
    assert len(server.stream_requests) == 1


def test_wrong_secret_tweepy_face(server: FakeStreamServer) -> None:
    calls: list[Any] = []

    class Recorder(Stream):
        def on_request_error(self, status_code: int) -> None:
            calls.append(status_code)

        def on_exception(self, exception: Exception) -> None:
            calls.append(type(exception))

        def on_disconnect(self) -> None:
            calls.append("disconnect")

    make(server, Recorder, creds=(CK, CS, AT, "wrong")).sample()
    assert calls == [401, Unauthorized, "disconnect"]
    assert len(server.stream_requests) == 1


def test_every_reconnect_is_signed_afresh(
    server: FakeStreamServer, verifier: OAuthVerifier
) -> None:
    server.script(Attempt(messages=1, ending="close"), Attempt(messages=1, ending="cut"))
    stream = make(server).filter_stream(locations=[-122.75, 36.8, -121.75, 37.8])
    stream.statuses.pipe(ops.take(3), ops.to_list()).run()
    assert len(verifier.checked) == 3 and all(c["ok"] for c in verifier.checked)
    assert len(verifier.nonces) == 3
    assert server.stream_requests[0].form == {"locations": ["-122.7500,36.8000,-121.7500,37.8000"]}


# --- parameters -------------------------------------------------------------------------------


def test_filter_params_like_tweepy() -> None:
    assert filter_params(
        follow=[12, "13"],
        track=["a b", "#c"],
        locations=[-180, -90, 180, 90],
        filter_level="low",
        languages=("en",),
        stall_warnings=True,
        delimited="length",
    ) == {
        "follow": "12,13",
        "track": "a b,#c",
        "locations": "-180.0000,-90.0000,180.0000,90.0000",
        "filter_level": "low",
        "language": "en",
        "stall_warnings": "true",
        "delimited": "length",
    }
    assert filter_params(track=["x" * 60]) == {"track": "x" * 60}
    assert filter_params(track=["é" * 30]) == {"track": "é" * 30}  # 60 bytes
    assert filter_params(track=[f"t{i}" for i in range(400)])["track"].count(",") == 399
    assert len(filter_params(follow=range(1, 5001))["follow"].split(",")) == 5000
    assert filter_params(locations=[0, 0, 1, 1] * 25)["locations"].count(",") == 99
    assert filter_params(follow=[1], filter_level="none")["filter_level"] == "none"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "at least one of follow, track or locations"),
        ({"track": [], "follow": [], "locations": []}, ValueError, "at least one"),
        ({"languages": ["en"]}, ValueError, "at least one"),
        (
            {"track": "python"},
            TypeError,
            r"track must be a list, not a string: use track=\['python'\]",
        ),
        ({"track": [""]}, ValueError, "empty or blank"),
        ({"track": ["   "]}, ValueError, "empty or blank"),
        ({"track": ["x" * 61]}, ValueError, "61 bytes of UTF-8; X accepts 1 to 60"),
        ({"track": ["é" * 31]}, ValueError, "62 bytes"),
        ({"track": ["a,b"]}, ValueError, "contains a comma"),
        ({"track": [1]}, TypeError, "not a string"),
        (
            {"track": [f"t{i}" for i in range(401)]},
            ValueError,
            "401 phrases; X accepts at most 400",
        ),
        ({"follow": range(1, 5002)}, ValueError, "5001 user ids; X accepts at most 5000"),
        ({"follow": ["@jack"]}, ValueError, "screen names are not accepted"),
        ({"follow": [-5]}, ValueError, "not a user id"),
        ({"follow": [0]}, ValueError, "not a user id"),
        ({"follow": [1.5]}, TypeError, "not a user id"),
        ({"follow": [True]}, TypeError, "not a user id"),
        ({"follow": 12}, TypeError, "follow must be a list, not int"),
        ({"locations": [1, 2, 3]}, ValueError, "3 numbers; need 4 per bounding box"),
        ({"locations": [0, 0, 1, 1] * 26}, ValueError, "26 bounding boxes; X accepts at most 25"),
        ({"locations": [-181, 0, 1, 1]}, ValueError, r"longitudes must be within \[-180, 180\]"),
        ({"locations": [0, -91, 1, 1]}, ValueError, r"latitudes must be within \[-90, 90\]"),
        ({"locations": [1, 1, 0, 2]}, ValueError, "south-west corner first"),
        ({"locations": [0, 2, 1, 1]}, ValueError, "south-west corner first"),
        ({"locations": ["0", 0, 1, 1]}, TypeError, "not a number"),
        ({"locations": [float("nan"), 0, 1, 1]}, ValueError, "not a finite number"),
        (
            {"track": ["x"], "filter_level": "high"},
            ValueError,
            "filter_level must be one of none, low, medium",
        ),
        ({"track": ["x"], "languages": "en"}, TypeError, "languages must be a list"),
        ({"track": ["x"], "delimited": "lines"}, ValueError, "delimited must be 'length'"),
    ],
)
def test_filter_validation(
    server: FakeStreamServer, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    stream = make(server)
    with pytest.raises(error, match=match):
        stream.filter(**kwargs)
    with pytest.raises(error, match=match):
        stream.filter_stream(**kwargs)
    assert not stream.running
    assert server.requests == []


def test_sample_validation(server: FakeStreamServer) -> None:
    with pytest.raises(TypeError, match="languages must be a list"):
        make(server).sample(languages="en")
    with pytest.raises(ValueError, match="delimited"):
        make(server).sample_stream(delimited="yes")
    with pytest.raises(TypeError, match="consumer_secret must be a non-empty string"):
        Stream(CK, "", AT, ATS)
    with pytest.raises(TypeError, match="access_token must be a non-empty string"):
        Stream(CK, CS, None, ATS)  # type: ignore[arg-type]
    assert server.requests == []


# --- delimited=length -------------------------------------------------------------------------


def framed(line: bytes, extra: int = 0) -> bytes:
    """X's ``delimited=length`` framing of one message; the server adds the final CRLF."""
    return str(len(line) + 2 + extra).encode() + b"\r\n" + line


def test_delimited_length_stream(verifier: OAuthVerifier) -> None:
    messages = [b"", framed(ARCHIVE[0]), b"", b"", framed(ARCHIVE[1]), framed(ARCHIVE[2])]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05, verify_v1=verifier) as srv:
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).sample_stream(
            delimited="length"
        )
        events: list[Any] = []
        with stream.hold():
            watching = stream.events.subscribe(events.append)
            ids = Collect(stream.statuses.pipe(ops.map(lambda s: s.id), ops.take(3)))
        ids = ids.wait()
        watching.dispose()
        assert srv.stream_requests[0].query == {"delimited": ["length"]}
    assert ids == [key_of(line)[1] for line in ARCHIVE[:3]]
    assert (stream.delimited.lengths, stream.delimited.mismatches) == (3, 0)
    assert sum(isinstance(e, KeepAlive) for e in events) >= 3
    assert not any(isinstance(e, MalformedMessage) for e in events)
    assert verifier.checked[0]["ok"] and "delimited" in verifier.checked[0]["signed"]


def test_delimited_length_filter_form(server: FakeStreamServer, verifier: OAuthVerifier) -> None:
    server.script(Attempt(messages=1, ending="hold"))
    stream = make(server).filter_stream(track=["x"], delimited="length")
    stream.messages.pipe(ops.take(1)).run()
    assert server.stream_requests[0].form == {"track": ["x"], "delimited": ["length"]}
    assert verifier.checked[0] == {"ok": True, "signed": {"track", "delimited"}}
    assert stream.delimited.mismatches == 1  # the archive lines come unframed here


def test_length_delimited_operator(caplog: pytest.LogCaptureFixture) -> None:
    stats = DelimitedStats()
    lines = [
        b"",
        b"9",
        b'{"a":12}',  # 8 + 2 = 10: the length says 9 -> mismatch, passed on
        b" ",
        b"10",
        b'{"a":12}',  # right
        b'{"b":1}',  # no length line -> mismatch, passed on
        b"5",
        b"7",  # two lengths in a row -> mismatch
        b"{}x",  # 3 + 2 = 5 ... but 7 was expected -> mismatch
    ]
    out = from_iterable(lines).pipe(length_delimited(stats), ops.to_list()).run()
    assert out == [b"", b'{"a":12}', b" ", b'{"a":12}', b'{"b":1}', b"{}x"]
    assert (stats.lengths, stats.mismatches) == (4, 4)
    warnings = [r.getMessage() for r in caplog.records if r.name == "rxtweet.v1"]
    assert warnings == [
        "delimited=length: the length line said 9 bytes, the message has 10 (mismatches so far: 1)",
        "delimited=length: a message of 9 bytes had no length line (mismatches so far: 2)",
        "delimited=length: a length line (5) had no message (mismatches so far: 3)",
        "delimited=length: the length line said 7 bytes, the message has 5 (mismatches so far: 4)",
    ]
    assert repr(stats) == "DelimitedStats(lengths=4, mismatches=4)"


def test_delimited_state_restarts_on_reconnect(verifier: OAuthVerifier) -> None:
    """A cut between a length line and its message must not leave a stale length behind."""
    messages = [framed(line) for line in ARCHIVE[:6]]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05, verify_v1=verifier) as srv:
        srv.script(Attempt(messages=2, ending="cut", chunking="byte"), Attempt(ending="hold"))
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).sample_stream(
            delimited="length"
        )
        ids = stream.statuses.pipe(ops.map(lambda s: s.id), ops.take(6), ops.to_list()).run()
    assert ids == [key_of(line)[1] for line in ARCHIVE[:6]]
    assert stream.delimited.mismatches == 0
    assert stream.delimited.lengths >= 6  # the cut one's length line came twice


# --- message types, unknown types -------------------------------------------------------------


ALL_TYPES = [
    ARCHIVE[0],  # status
    next(line for line in ARCHIVE if line.startswith(b'{"delete"')),
    b'{"limit":{"track":121564}}',  # real (twitter4j, 2009)
    b'{"scrub_geo":{"user_id":14090452,"user_id_str":"14090452","up_to_status_id":23260136625,'
    b'"up_to_status_id_str":"23260136625"}}',  # twitter4j's (from the documentation)
    crafted("status_withheld"),
    crafted("user_withheld"),
    SFERIK[-1],  # warning (sferik, documentation text)
    SFERIK[0],  # {"friends": [...]}: an unknown type on statuses/filter
    disconnect(12, "shed load"),
]
ALL_TYPE_CLASSES = [
    Status,
    DeleteNotice,
    LimitNotice,
    ScrubGeoNotice,
    StatusWithheldNotice,
    UserWithheldNotice,
    StallWarning,
    UnknownNotice,
    DisconnectNotice,
]


def test_every_substream(verifier: OAuthVerifier, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rxtweet.v1")
    with FakeStreamServer(messages=ALL_TYPES, keepalive_interval=0.05, verify_v1=verifier) as srv:
        srv.script(Attempt(ending="hold"))
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).filter_stream(
            track=["x"], stall_warnings=True
        )
        got: dict[str, list[Any]] = {}
        names = [
            "messages", "statuses", "deletes", "limits", "scrub_geo", "status_withheld",
            "user_withheld", "warnings", "disconnect_messages", "events",
        ]  # fmt: skip
        with stream.hold():
            subs = [getattr(stream, n).subscribe(got.setdefault(n, []).append) for n in names]
        assert wait_until(lambda: len(got["messages"]) == len(ALL_TYPES))
        assert len(srv.stream_requests) == 1  # ten substreams, one connection
        for sub in subs:
            sub.dispose()
        assert srv.stream_requests[0].form["stall_warnings"] == ["true"]
    assert [type(m) for m in got["messages"]] == ALL_TYPE_CLASSES
    for name, cls in zip(
        names[1:-1], [c for c in ALL_TYPE_CLASSES if c is not UnknownNotice], strict=True
    ):
        assert [type(m) for m in got[name]] == [cls], name
    assert got["limits"][0].track == 121564
    assert got["disconnect_messages"][0].code == 12
    unknown = [e for e in got["events"] if isinstance(e, UnknownMessage)]
    assert len(unknown) == 1 and unknown[0].keys == ("friends",) and unknown[0].raw == SFERIK[0]
    assert repr(unknown[0]) == f"UnknownMessage(keys=('friends',), raw=<{len(SFERIK[0])} bytes>)"
    assert isinstance(got["events"][0], Connected)
    assert "Received unknown message type (keys: friends)" in caplog.text
    assert "X sent disconnect code 12 (shed load)" in caplog.text


def test_unknown_types_are_never_fatal(verifier: OAuthVerifier) -> None:
    messages = [SFERIK[0], SFERIK[2], SFERIK[3], ARCHIVE[0], b'{"x":1}', ARCHIVE[1]]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05, verify_v1=verifier) as srv:
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).sample_stream()
        events: list[Any] = []
        with stream.hold():
            watching = stream.events.subscribe(events.append)
            ids = Collect(stream.statuses.pipe(ops.map(lambda s: s.id), ops.take(2)))
        ids = ids.wait()
        watching.dispose()
    assert ids == [key_of(ARCHIVE[0])[1], key_of(ARCHIVE[1])[1]]
    assert [e.keys[0] for e in events if isinstance(e, UnknownMessage)] == [
        "friends", "direct_message", "event", "x",
    ]  # fmt: skip


# --- disconnect messages -----------------------------------------------------------------------


def test_shed_load_disconnect_reconnects() -> None:
    messages = [ARCHIVE[0], disconnect(12, "Shed load"), ARCHIVE[1]]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05) as srv:
        srv.script(Attempt(messages=2, ending="close"), Attempt(ending="hold"))
        stream = make(srv).sample_stream()
        items: list[Any] = []
        with stream.hold():
            watching = stream.disconnect_messages.subscribe(items.append)
            watching_events = stream.events.subscribe(items.append)
            ids = Collect(stream.statuses.pipe(ops.map(lambda s: s.id), ops.take(2)))
        ids = ids.wait()
        watching.dispose()
        watching_events.dispose()
        assert len(srv.stream_requests) == 2
    assert ids == [key_of(ARCHIVE[0])[1], key_of(ARCHIVE[1])[1]]
    kinds = [type(i) for i in items if not isinstance(i, KeepAlive)]
    assert kinds[:4] == [Connected, DisconnectNotice, Closed, Reconnecting]


@pytest.mark.parametrize("code", [2, 6, 7])
def test_fatal_disconnect_codes_end_the_stream(code: int, caplog: pytest.LogCaptureFixture) -> None:
    messages = [ARCHIVE[0], disconnect(code, "the reason from X"), ARCHIVE[1]]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05) as srv:
        srv.script(Attempt(messages=2, ending="close"))
        stream = make(srv).filter_stream(track=["x"])
        got: list[Any] = []
        with stream.hold():
            stream.disconnect_messages.subscribe(got.append, lambda _: None)
            stream.events.subscribe(got.append)
            statuses = Collect(stream.statuses)
        with pytest.raises(FatalDisconnect) as caught:
            statuses.wait()
        time.sleep(0.15)
        assert len(srv.stream_requests) == 1
    assert caught.value.code == code and caught.value.reason == "the reason from X"
    assert str(caught.value).startswith(f"X disconnected the stream: code {code} (")
    assert [type(g) for g in got if not isinstance(g, KeepAlive)] == [
        Connected, DisconnectNotice, Errored, Disconnected,
    ]  # fmt: skip
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "rxtweet.v1"]
    assert len(errors) == 1 and "the reason from X" in errors[0].getMessage()
    assert "Not reconnecting" in errors[0].getMessage()


def test_fatal_disconnect_tweepy_face() -> None:
    calls: list[Any] = []

    class Recorder(Stream):
        def on_status(self, status: Status) -> None:
            calls.append("status")

        def on_disconnect_message(self, message: dict[str, Any]) -> None:
            calls.append(message)

        def on_exception(self, exception: Exception) -> None:
            calls.append(type(exception))

        def on_disconnect(self) -> None:
            calls.append("disconnect")

    with FakeStreamServer(messages=[ARCHIVE[0], disconnect(2)], keepalive_interval=0.05) as srv:
        make(srv, Recorder).sample()
        assert len(srv.stream_requests) == 1
    assert calls == [
        "status",
        {"code": 2, "stream_name": "s-1", "reason": "test"},
        FatalDisconnect,
        "disconnect",
    ]


def test_fatal_codes_can_be_turned_off() -> None:
    messages = [disconnect(2), ARCHIVE[0]]
    with FakeStreamServer(messages=messages, keepalive_interval=0.05) as srv:
        srv.script(Attempt(messages=1, ending="close"))
        client = make(srv)
        client.fatal_disconnect_codes = frozenset()  # tweepy's behaviour: just reconnect
        status = client.sample_stream().statuses.pipe(ops.take(1)).run()
        assert status.id == key_of(ARCHIVE[0])[1]
        assert len(srv.stream_requests) == 2


# --- the tweepy face ---------------------------------------------------------------------------


def test_every_hook_fires(verifier: OAuthVerifier) -> None:
    calls: list[Any] = []
    parsed_by_on_data: list[Any] = []

    class Recorder(Stream):
        def on_connect(self) -> None:
            calls.append("connect")

        def on_keep_alive(self) -> None:
            calls.append("keep_alive")

        def on_data(self, raw_data: bytes) -> Any:
            calls.append("data")
            parsed_by_on_data.append(raw_data)
            return super().on_data(raw_data)

        def on_status(self, status: Status) -> None:
            calls.append(("status", status.id))

        def on_delete(self, status_id: int, user_id: int) -> None:
            calls.append(("delete", status_id, user_id))

        def on_limit(self, track: int) -> None:
            calls.append(("limit", track))

        def on_scrub_geo(self, notice: dict[str, Any]) -> None:
            calls.append(("scrub_geo", notice["user_id"]))

        def on_status_withheld(self, notice: dict[str, Any]) -> None:
            calls.append(("status_withheld", notice["withheld_in_countries"]))

        def on_user_withheld(self, notice: dict[str, Any]) -> None:
            calls.append(("user_withheld", notice["id"]))

        def on_warning(self, warning: dict[str, Any]) -> None:
            calls.append(("warning", warning["percent_full"]))

        def on_disconnect_message(self, message: dict[str, Any]) -> None:
            calls.append(("disconnect_message", message["code"]))

        def on_event(self, event: Any) -> None:
            calls.append(type(event).__name__)

        def on_closed(self, response: Any) -> None:
            calls.append(f"closed:{response.status_code}")

        def on_connection_error(self) -> None:
            calls.append("connection_error")

        def on_request_error(self, status_code: int) -> None:
            calls.append(f"request_error:{status_code}")

        def on_exception(self, exception: Exception) -> None:
            calls.append(f"exception:{type(exception).__name__}")

        def on_disconnect(self) -> None:
            calls.append("disconnect")

    messages = [b"", *ALL_TYPES, ARCHIVE[1]]  # b"": the server sends a bare CRLF, a keep-alive
    with FakeStreamServer(messages=messages, keepalive_interval=None, verify_v1=verifier) as srv:
        srv.script(
            Attempt(messages=len(ALL_TYPES) + 1, ending="close"),
            Attempt(messages=0, ending="cut"),
            Attempt(status=503),
            Attempt(status=420),
            Attempt(status=401),
        )
        make(srv, Recorder).filter(track=["x"])
        assert len(srv.stream_requests) == 5
    status_id, delete = key_of(ARCHIVE[0])[1], orjson.loads(ALL_TYPES[1])["delete"]["status"]
    assert calls == [
        "connect",
        "keep_alive",
        "data", ("status", status_id),
        "data", ("delete", delete["id"], delete["user_id"]),
        "data", ("limit", 121564),
        "data", ("scrub_geo", 14090452),
        "data", ("status_withheld", ["DE", "AR"]),
        "data", ("user_withheld", 3),
        "data", ("warning", 60),
        "data", "UnknownMessage",
        "data", ("disconnect_message", 12),
        "closed:200", "Reconnecting",
        "connect", "connection_error", "Reconnecting",
        "request_error:503", "Reconnecting",
        "request_error:420", "Reconnecting",
        "request_error:401",
        "exception:Unauthorized",
        "Disconnected",
        "disconnect",
    ]  # fmt: skip
    assert parsed_by_on_data == [line for line in ALL_TYPES]


def test_on_data_override_without_super_replaces_dispatch(server: FakeStreamServer) -> None:
    seen: list[bytes] = []

    class Raw(Stream):
        def on_data(self, raw_data: bytes) -> None:
            seen.append(raw_data)
            if len(seen) == 3:
                self.disconnect()

        def on_status(self, status: Status) -> None:
            raise AssertionError("on_data replaced the dispatch")

    make(server, Raw).sample()
    assert seen == ARCHIVE[:3]


def test_on_data_parses_lines_it_was_not_given_by_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []

    class Direct(Stream):
        def on_status(self, status: Status) -> None:
            seen.append(status.id)

        def on_delete(self, status_id: int, user_id: int) -> None:
            seen.append(("delete", status_id))

    stream = Direct(CK, CS, AT, ATS)
    stream.on_data(ARCHIVE[0])
    stream.on_data(ALL_TYPES[1].decode())  # type: ignore[arg-type]
    stream.on_data(b"{not json")
    stream.on_data(b'{"delete":{"status":{}}}')
    assert seen == [
        key_of(ARCHIVE[0])[1],
        ("delete", orjson.loads(ALL_TYPES[1])["delete"]["status"]["id"]),
    ]
    assert "on_data: malformed message (not JSON)" in caplog.text
    assert "on_data: unexpected message shape: KeyError" in caplog.text


def test_default_hooks_log_like_tweepy(
    verifier: OAuthVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rxtweet")
    with FakeStreamServer(messages=ALL_TYPES, keepalive_interval=0.05, verify_v1=verifier) as srv:
        srv.script(Attempt(ending="hold"))
        stream = make(srv)
        thread = stream.filter(track=["x"], threaded=True)
        assert wait_until(lambda: "Received disconnect message" in caplog.text)
        stream.disconnect()
        thread.join(2)
    text = caplog.text
    for expected in (
        f"Received status: {key_of(ARCHIVE[0])[1]}",
        f"Received status deletion notice: {key_of(ALL_TYPES[1])[1]}",
        "Received limit notice: 121564",
        "Received location deletion notice: {'user_id': 14090452",
        "Received status withheld content notice: {'id': 1745000000000000001",
        "Received user withheld content notice: {'id': 3",
        "Received stall warning: {'code': 'FALLING_BEHIND'",
        "Received disconnect message: {'code': 12",
    ):
        assert expected in text, expected


def test_done_when_examples(verifier: OAuthVerifier, capsys: pytest.CaptureFixture[str]) -> None:
    """tweepy 4.12's documented v1.1 examples, with only the import changed and base_url added."""
    import rxtweet as tweepy  # after the export lands: import rxtweet as tweepy

    creds = (
        "Consumer Key here",
        "Consumer Secret here",
        "Access Token here",
        "Access Token Secret here",
    )
    with FakeStreamServer(
        messages=ARCHIVE, keepalive_interval=0.05, verify_v1=OAuthVerifier(*creds)
    ) as srv:
        srv.script(Attempt(messages=10, ending="hold"), Attempt(messages=10, ending="hold"))
        # stream = tweepy.Stream(...); stream.filter(track=["Tweepy"])  (blocks)
        stream = tweepy.Stream(
            "Consumer Key here",
            "Consumer Secret here",
            "Access Token here",
            "Access Token Secret here",
            base_url=srv.url,
        )
        runner = threading.Thread(target=lambda: stream.filter(track=["Tweepy"]))
        runner.start()
        assert wait_until(lambda: srv.sent >= 10)
        stream.disconnect()
        runner.join(2)
        assert not runner.is_alive() and not stream.running

        # stream.filter(follow=[...], threaded=True)
        stream = tweepy.Stream(*creds, base_url=srv.url)
        thread = stream.filter(follow=[2244994945, 6253282], threaded=True)
        assert isinstance(thread, threading.Thread)
        assert wait_until(lambda: srv.sent >= 20)
        stream.disconnect()
        thread.join(2)
        assert not thread.is_alive()

        # class IDPrinter(tweepy.Stream): def on_status(self, status): print(status.id)
        class IDPrinter(tweepy.Stream):  # type: ignore[misc,name-defined]
            def on_status(self, status: Any) -> None:
                print(status.id)

        printer = IDPrinter(*creds, base_url=srv.url)
        capsys.readouterr()
        # the third run gets messages 21-60: it prints the id of each status among them
        expected = [key for kind, key in map(key_of, ARCHIVE[20:]) if kind == "status"]
        out: list[str] = []

        def printed_all() -> bool:
            out.append(capsys.readouterr().out)
            return "".join(out).count("\n") >= len(expected)

        runner = threading.Thread(target=printer.sample)  # printer.sample() (blocks)
        runner.start()
        assert wait_until(printed_all)
        printer.disconnect()
        runner.join(2)
        assert not runner.is_alive()
        requests_made = srv.stream_requests
    printed = [int(x) for x in "".join(out).split()]
    assert printed == expected
    assert [(r.method, r.path) for r in requests_made] == [
        ("POST", "/1.1/statuses/filter.json"),
        ("POST", "/1.1/statuses/filter.json"),
        ("GET", "/1.1/statuses/sample.json"),
    ]
    assert requests_made[0].form == {"track": ["Tweepy"]}
    assert requests_made[1].form == {"follow": ["2244994945,6253282"]}


def test_already_running(server: FakeStreamServer) -> None:
    stream = make(server)
    thread = stream.sample(threaded=True)
    with pytest.raises(StreamAlreadyRunning):
        stream.filter(track=["x"])
    stream.disconnect()
    thread.join(2)
    assert not stream.running


# --- secrets -----------------------------------------------------------------------------------


def test_secrets_stay_out_of_reprs_logs_and_errors(
    server: FakeStreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make(server)
    stream = client.filter_stream(track=["python"])
    stream.statuses.pipe(ops.take(2)).run()
    server.script(Attempt(status=401))
    with pytest.raises(Unauthorized) as caught:
        client.sample_stream().statuses.pipe(ops.to_list()).run()
    make(server, creds=(CK, "bad", AT, ATS)).sample()
    # The client's records; the fake server stands for X (its verifier's oauthlib logs the
    # base string when a signature fails, as X's own logs might).
    client_log = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.threadName.startswith("rxtweet-fake-server")
    )
    assert "urllib3" in client_log and "rxtweet.transport" in client_log  # DEBUG was on
    texts = [
        client_log,
        repr(client),
        repr(stream),
        repr(stream.connection),
        repr(stream.connection.request),
        repr(stream.connection.request.auth),
        str(caught.value),
        repr(caught.value),
        repr(server.stream_requests[0]),
    ]
    for text in texts:
        for secret in (CK, CS, AT, ATS):
            assert secret not in text, (secret, text[:200])
    assert "auth=<_QuietOAuth1>" in repr(stream.connection.request)


def test_oauth_library_logging_is_left_alone_outside_rxtweet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    request = requests.Request(
        "GET", "http://127.0.0.1:1/x", auth=OAuth1(CK, CS, AT, ATS)
    ).prepare()
    assert "Authorization" in request.headers
    assert any(r.name.startswith(("oauthlib", "requests_oauthlib")) for r in caplog.records)


# --- shared connection, exactly once -----------------------------------------------------------


def test_substreams_share_one_connection(server: FakeStreamServer) -> None:
    server.script(Attempt(ending="hold"))
    stream = make(server).sample_stream()
    got: dict[str, list[Any]] = {"m": [], "s": [], "d": []}
    with stream.hold():
        subs = [
            stream.messages.subscribe(got["m"].append),
            stream.statuses.subscribe(got["s"].append),
            stream.deletes.subscribe(got["d"].append),
        ]
        assert not stream.connected
    assert wait_until(lambda: len(got["m"]) == len(ARCHIVE))
    assert len(server.stream_requests) == 1
    assert len(got["s"]) == 58 and len(got["d"]) == 2
    # Counted per read after its items were delivered, on the reader's thread (ParseStats).
    assert wait_until(lambda: stream.stats.messages >= 60, 1.0)
    assert stream.stats.messages == 60
    for sub in subs:
        sub.dispose()
    assert wait_until(lambda: not stream.connected)
    assert wait_until(lambda: server.requests[-1].ended_at is not None)
    assert isinstance(stream, V1Stream) and repr(stream).startswith("<V1Stream StreamRequest(GET ")


def test_lines_are_cold(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=1, ending="hold"), Attempt(messages=1, ending="hold"))
    stream = make(server).sample_stream()
    first = stream.lines.pipe(ops.filter(bool), ops.take(1)).run()
    second = stream.lines.pipe(ops.filter(bool), ops.take(1)).run()
    assert (first, second) == (ARCHIVE[0], ARCHIVE[1])
    assert len(server.stream_requests) == 2


def test_exactly_once_through_cut_420_and_stall(verifier: OAuthVerifier) -> None:
    with FakeStreamServer(messages=ARCHIVE, keepalive_interval=0.05, verify_v1=verifier) as srv:
        srv.script(
            Attempt(messages=7, ending="cut", chunking="random", seed=3),
            Attempt(status=420),
            Attempt(messages=9, ending="stall"),
            Attempt(status=503),
            Attempt(messages=11, ending="cut", gzip=True, chunking="byte"),
            Attempt(gzip=True, chunking="random", seed=4, ending="hold"),
        )
        client = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST, stall_timeout=0.3)
        stream = client.filter_stream(track=["x"])
        events: list[Any] = []
        with stream.hold():
            watching = stream.events.subscribe(events.append)
            collected = Collect(
                stream.messages.pipe(ops.map(key_of_message), ops.take(len(ARCHIVE)))
            )
        got = collected.wait(10)
        watching.dispose()
        assert len(srv.stream_requests) == 6
    assert got == [key_of(line) for line in ARCHIVE]
    assert sum(isinstance(e, Reconnecting) for e in events) == 5
    failed = [e for e in events if isinstance(e, RequestFailed)]
    assert [f.status_code for f in failed] == [420, 503]
    assert isinstance(failed[0].exception, TooManyRequests)
    assert failed[0].body is None  # 420's body is X's plain text
    assert all(c["ok"] for c in verifier.checked) and len(verifier.nonces) == 6
    assert stream.stats.malformed == 0


# --- the 2015 recording: a real gzip filter stream ----------------------------------------------


def obama_lines_from_tests_data() -> list[bytes]:
    """The recorded response's body, de-chunked and gunzipped (it ends cut, mid-status)."""
    head, body = OBAMA_HTTP.read_bytes().split(b"\r\n\r\n", 1)
    assert b"content-Encoding: gzip" in head
    payload = ChunkedDecoder().feed(body)
    return zlib.decompressobj(wbits=31).decompress(payload).split(b"\r\n")


def run_obama(source: Any, verifier: OAuthVerifier) -> tuple[list[Status], list[Any]]:
    with FakeStreamServer(messages=source, keepalive_interval=0.05, verify_v1=verifier) as srv:
        srv.script(Attempt(gzip=True, chunking="random", seed=7, ending="close"))
        stream = Stream(CK, CS, AT, ATS, base_url=srv.url, reconnect=FAST).filter_stream(
            track=["obama"]
        )
        events: list[Any] = []
        statuses: list[Status] = []
        with stream.hold():
            watching = stream.events.subscribe(events.append)
            reading = stream.statuses.subscribe(statuses.append)
        # The recording ends cut; the server then closes the response: every line is in.
        assert wait_until(lambda: any(isinstance(e, Closed) for e in events), timeout=10)
        reading.dispose()
        watching.dispose()
        assert srv.stream_requests[0].form == {"track": ["obama"]}
    return statuses, events


def check_obama(statuses: list[Status], events: list[Any]) -> None:
    assert len(statuses) == 111
    assert len({s.id for s in statuses}) == 111
    assert sum(hasattr(s, "retweeted_status") for s in statuses) == 42
    assert sum(s.place is not None for s in statuses) == 3
    assert all(s.created_at.year == 2015 for s in statuses)
    malformed = [e for e in events if isinstance(e, MalformedMessage)]
    assert [m.reason for m in malformed] == ["truncated JSON"]  # the status cut by the recorder


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is not beside the repository")
def test_obama_capture_jsonl_from_shared(verifier: OAuthVerifier) -> None:
    statuses, events = run_obama(str(OBAMA_SHARED), verifier)
    check_obama(statuses, events)


def test_obama_capture_from_tests_data(verifier: OAuthVerifier) -> None:
    lines = obama_lines_from_tests_data()
    if OBAMA_SHARED.is_file():
        assert b"\r\n".join(lines) == OBAMA_SHARED.read_bytes()
    statuses, events = run_obama([line for line in lines if line], verifier)
    check_obama(statuses, events)
    assert statuses[0].id == orjson.loads(lines[0])["id"]


def test_module_exports() -> None:
    assert rxtweet.v1.Stream is Stream
    assert set(rxtweet.v1.__all__) <= set(dir(rxtweet.v1))
