"""Test helpers for code that consumes the X streaming APIs — yours and rxtweet's own.

* :class:`FakeStreamServer`: a real HTTP/1.1 server on ``127.0.0.1`` imitating X's
  streaming endpoints (v2 and v1.1) and the filtered-stream rules endpoint. Script what
  each connection attempt gets with :class:`Attempt` (status, messages, chunking, gzip,
  how the response ends); inspect what clients sent with :class:`RecordedRequest`.
  By default it answers as X does: only the fields a request asks for, and on the filtered
  stream only the messages matching the rules added through the rules endpoint (409
  without rules); ``fields="all"`` and ``match_rules=False`` send messages as given.
* :func:`generate_v2_messages`: an endless, deterministic stream of realistic v2 messages
  (``clock=time.time`` stamps each one with the time it is sent); and for the other v2
  streams :func:`generate_compliance_messages`, :func:`generate_like_messages`,
  :func:`generate_label_messages`, :func:`generate_activity_messages`.
* The server answers every v2 stream X serves, with X's partitions (disjoint shards of an
  endpoint's messages; ``partition`` required and range-checked) and the activity
  subscriptions endpoint.
* Timeline mode (``FakeStreamServer(timeline=Timeline(...))``, :mod:`rxtweet.testing.timeline`):
  a scaled server clock, messages published on it whether anyone is connected, Snowflake ids
  of the publish time, ``backfill_minutes`` and ``start_time``/``end_time`` replays with X's
  duplicates, redundant connections up to X's limit, and cuts on demand — for recovery and
  de-duplication tests.
* :func:`live_threads`: the threads of rxtweet still running (re-exported from
  :mod:`rxtweet.scheduling`), for a fixture asserting that a test left nothing behind.
* :class:`MockTransport`: a transport answering from a function (e.g. a
  ``TestScheduler`` cold observable), to drive a whole client in virtual time, no socket.
* A pytest plugin (:mod:`rxtweet.testing.pytest_plugin`, registered on install): the
  ``fake_stream_server`` fixture, configured by overriding ``fake_stream_server_options``.

Example (a pytest test)::

    import requests
    from itertools import islice
    from rxtweet.testing import Attempt, FakeStreamServer, generate_v2_messages

    def test_reads_three_tweets():
        source = islice(generate_v2_messages(seed=1), 3)
        with FakeStreamServer(messages=source, bearer_token="t0ken") as server:
            server.script(Attempt(ending="close"))
            response = requests.get(
                server.url + "/2/tweets/sample/stream",
                headers={"Authorization": "Bearer t0ken"},
                stream=True,
            )
            assert len([line for line in response.iter_lines() if line]) == 3
            assert server.sent == 3
            assert server.requests[0].headers["authorization"] == "Bearer t0ken"

Everything here only talks to the loopback interface and leaves no thread behind once the
server is stopped.
"""

from __future__ import annotations

from ..scheduling import live_threads
from .generate import (
    generate_activity_messages,
    generate_compliance_messages,
    generate_label_messages,
    generate_like_messages,
    generate_v2_messages,
)
from .mock_transport import MockTransport
from .problems import default_error_body
from .server import FakeStreamServer
from .timeline import PublishedMessage, Timeline, snowflake_id, snowflake_time
from .values import Attempt, Chunking, Ending, FieldsMode, MessageSource, RecordedRequest

__all__ = [
    "Attempt",
    "Chunking",
    "Ending",
    "FakeStreamServer",
    "FieldsMode",
    "MessageSource",
    "MockTransport",
    "PublishedMessage",
    "RecordedRequest",
    "Timeline",
    "default_error_body",
    "generate_activity_messages",
    "generate_compliance_messages",
    "generate_label_messages",
    "generate_like_messages",
    "generate_v2_messages",
    "live_threads",
    "snowflake_id",
    "snowflake_time",
]
