"""Issue 12 for API v1.1: the ``rxtweet.v1`` package, V1Stream on Substreams, and the v1.1
client on the transport seam (no socket: :class:`rxtweet.testing.MockTransport`)."""

from __future__ import annotations

import reactivex
from reactivex import operators as ops

import rxtweet
import rxtweet.status
import rxtweet.v1
from rxtweet.events import KeepAlive, UnknownMessage
from rxtweet.http import StreamRequest
from rxtweet.parse import Parsed
from rxtweet.substreams import Substreams
from rxtweet.testing import MockTransport
from rxtweet.v1 import ENDPOINTS, LimitNotice, Status, Stream, UnknownNotice, V1Stream
from rxtweet.v1.stream import unknown_as_events

CREDENTIALS = ("ck-issue12", "cs-issue12", "at-issue12", "as-issue12")
STATUS = b'{"id":1,"id_str":"1","in_reply_to_status_id":null,"user":{"id":2},"text":"hi"}'


def test_old_paths_give_the_same_objects() -> None:
    assert rxtweet.status.Status is rxtweet.v1.Status is rxtweet.Status
    assert rxtweet.status.to_v1_message is rxtweet.v1.to_v1_message
    assert Status.__module__ == "rxtweet.v1.models"
    assert set(rxtweet.status.__all__) <= set(rxtweet.v1.__all__)


def test_v1_stream_is_a_declaration_on_substreams() -> None:
    assert issubclass(V1Stream, Substreams)
    # Only its own substreams and counters: the glue (items, hold, repr …) is inherited.
    own = {name for name in vars(V1Stream) if not name.startswith("__")}
    assert own == {"_event_operators"}


def test_filter_and_filter_stream_send_the_same_request() -> None:
    transport = MockTransport(lambda request: reactivex.of(STATUS))
    client = Stream(*CREDENTIALS, transport=transport, base_url="http://x.test", max_retries=0)
    stream = client.filter_stream(track=["python"], delimited="length")
    assert stream.statuses.pipe(ops.take(1)).run().id == 1
    client.filter(track=["python"], delimited="length")
    first, second = transport.requests
    method, path = ENDPOINTS["filter"]
    for request in (first, second):
        assert isinstance(request, StreamRequest)
        assert (request.method, request.url) == (method, "http://x.test" + path)
        assert request.data == {"track": "python", "delimited": "length"}


def test_a_v1_client_runs_on_a_mock_transport_with_length_framing() -> None:
    limit = b'{"limit":{"track":7}}'
    lines = [b"", str(len(STATUS) + 2).encode(), STATUS, str(len(limit) + 2).encode(), limit]
    transport = MockTransport(lambda request: reactivex.from_iterable(lines))
    client = Stream(*CREDENTIALS, transport=transport, max_retries=0)
    stream = client.sample_stream(delimited="length")
    assert stream.connection.request.url == "https://stream.twitter.com" + ENDPOINTS["sample"][1]
    got = stream.limits.pipe(ops.take(1), ops.to_list()).run()
    assert got == [LimitNotice({"track": 7})]
    assert (stream.delimited.lengths, stream.delimited.mismatches) == (2, 0)


def test_unknown_messages_become_events_before_the_split() -> None:
    transport = MockTransport(lambda request: reactivex.of(b'{"friends":[1,2]}', STATUS))
    stream = Stream(*CREDENTIALS, transport=transport, max_retries=0).sample_stream()
    unknown = stream.events.pipe(ops.filter(lambda e: type(e) is UnknownMessage), ops.take(1))
    event = unknown.run()
    assert event.keys == ("friends",) and event.raw == b'{"friends":[1,2]}'
    # The operator alone, on items: only the parsed unknown notice changes.
    items = [Parsed(UnknownNotice({"x": 1}), b'{"x":1}'), Parsed(1, b"1"), KeepAlive()]
    out = reactivex.from_iterable(items).pipe(unknown_as_events(), ops.to_list()).run()
    assert out[0] == UnknownMessage(b'{"x":1}', ("x",)) and out[1:] == items[1:]
