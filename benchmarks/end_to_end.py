"""End-to-end benchmark: socket to ``on_tweet``/``on_status`` (or an observer), v2 and v1.1.

Run by hand (the test suite never runs it)::

    . .venv/bin/activate
    python benchmarks/end_to_end.py            # about 8 minutes
    python benchmarks/end_to_end.py --quick    # about 2 minutes
    python benchmarks/end_to_end.py --instructions --apis v2s,v2   # callgrind, ~10 minutes
    python benchmarks/end_to_end.py --profile rx-hook --apis v2s

A server in its own process serves real stream messages (generated ones without ../shared,
or with ``--generated``) over a local chunked HTTP/1.1 stream (one HTTP chunk per message,
as X sends them); each client reads them in a fresh interpreter of its own, one client
after another, and does the same work: parse every message and count the tweets (v2) or the
statuses (v1.1) until the N-th. Three inputs:

* ``v2s``: the default payload of a sample or firehose stream without ``tweet.fields``,
  ~200 B: the real texts and ids of twitter-dart's 70 sample-stream messages as
  ``{"data":{"edit_history_tweet_ids":[id],"id":id,"text":...}}``;
* ``v2``: twarc-csv's 8 filtered-stream tweets with expansions, ~4 KB;
* ``v1``: one minute of the v1.1 sample (Archive Team), ~5 KB.

Clients:

* ``floor``: a raw ``socket``, de-chunk, split lines, ``orjson.loads`` each line, count:
  the lean Python floor (split + orjson).
* ``floor-walk``: a raw socket, ``recv_into`` one preallocated buffer, walk the chunks
  (read each chunk-size line, jump over the payload) and hand orjson a zero-copy
  ``memoryview`` of each message: the least work Python can do to see each message as a
  dict (it trusts one message per chunk, as X sends them).
* ``tweepy``: tweepy 4.12.1 (``benchmarks/.venv-tweepy``, see ``_tweepy_env.py``):
  ``StreamingClient.sample()`` counting ``on_tweet``, ``Stream.sample()`` counting
  ``on_status``. Their read and parse loops are untouched (``chunk_size=512``,
  ``json.loads``, model building); only ``_connect`` points at the local server.
* ``rx-hook``: rxtweet's tweepy face, the same subclasses (``on_tweet``/``on_status``,
  ``disconnect()`` at N) on ``rxtweet.StreamingClient``/``rxtweet.Stream``.
* ``rx-reactive``: rxtweet's reactive face:
  ``client.sample_stream().tweets.pipe(ops.take(N))`` and
  ``stream.sample_stream().statuses.pipe(ops.take(N))`` with a counting observer.

Three measures:

1. throughput: the messages sent in large ``sendall``s; each client's msg/s, its CPU
   seconds (all threads) from just before connecting to the N-th message, its peak RSS.
   ``--repeats`` runs per client, interleaved; the table shows the best (shortest wall)
   and the spread of the runs, with ratios against both floors and tweepy.
2. delivery latency at each of ``--rates`` msg/s: the server writes
   ``"sent_ns": monotonic_ns()`` into each message just before its ``sendall`` (first
   member of the v2 ``data`` object, of the v1.1 status object), and the client takes
   ``monotonic_ns() - sent_ns`` in its hook or observer, from the parsed tweet/status
   (``tweet.data``, ``status._json``).
3. memory: RSS of one ``rx-reactive`` client over ``--memory-messages`` (1,000,000)
   default-field v2 messages, the server looping the input; sampled every tenth of the run.

``--instructions`` replaces all three with one table that does not swing as wall times do on
a shared machine: each client's instructions per message, counted by valgrind (callgrind) in
the client process (the server runs apart), end to end from the socket to the observer. It
misses what instructions do not show (system calls, cache misses), so it complements the
wall-time tables rather than replacing them. About 10 minutes with tweepy; needs valgrind.

Only this file's and ``_common.py``'s standard-library parts run in every interpreter;
rxtweet, reactivex, orjson and tweepy are imported inside the clients that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    BEARER,
    FLOOR_RECV_SIZE,
    REPO,
    SHARED,
    Measure,
    Prepare,
    Run,
    Server,
    command_line,
    floor_read,
    floor_request,
    fmt_ratio,
    frame,
    measure_once,
    percentile,
    pin_from_argv,
    print_machine,
    read_lines,
    report,
    rss_kb,
    run_client,
    send_blocks,
    send_paced,
    serve_connections,
    stamp,
    throughput_body,
)

SCRIPT = Path(__file__).resolve()
#: The inputs: ``v2s`` the default ~200 B v2 payload, ``v2`` 4 KB v2 messages, ``v1`` v1.1.
APIS = ("v2s", "v2", "v1")
FLOORS = ("floor", "floor-walk")
CLIENTS = ("floor", "floor-walk", "tweepy", "rx-hook", "rx-reactive")
RX_CLIENTS = ("rx-hook", "rx-reactive")
INPUTS = {
    # 70 real sample-stream messages, {"data":{"id","text"}}: given the default fields below
    "v2s": SHARED / "data/real/v2/twitter-dart_sample_stream.jsonl",
    # 8 filtered-stream tweets with expansions (its one system message is left out)
    "v2": SHARED / "data/real/v2/twarc-csv_streaming_output.jsonl",
    # one minute of the 1% sample, 2021-01-01 07:29Z: 3,173 statuses and 307 deletes
    "v1": SHARED / "data/real/v1/archiveteam_sample_2021-01-01T0729Z.json.bz2",
}
PATHS = {
    "v2s": "/2/tweets/sample/stream",
    "v2": "/2/tweets/sample/stream",
    "v1": "/1.1/statuses/sample.json",
}
API_NAMES = {
    "v2s": "API v2, default fields (~200 B)",
    "v2": "API v2, with expansions (~4 KB)",
    "v1": "API v1.1 (statuses)",
}


def family(api: str) -> str:
    """``"v2"`` or ``"v1"``: which client a dataset is read with."""
    return "v1" if api == "v1" else "v2"


#: Dummy OAuth 1.0a credentials: the local server does not check the signature.
OAUTH = ("benchmark-consumer-key", "benchmark-consumer-secret", "benchmark-token", "secret")

# Goals (issue 17, which keeps issue 7's), checked at the end of a run:
# (dataset, client) -> (reference client, least ratio of msg/s).
GOALS: dict[tuple[str, str], tuple[tuple[str, float], ...]] = {
    ("v2s", "rx-reactive"): (("floor", 0.5), ("tweepy", 3.5)),
    ("v2s", "rx-hook"): (("tweepy", 3.0),),
    ("v2", "rx-reactive"): (("floor-walk", 0.8), ("tweepy", 6.0)),
    ("v2", "rx-hook"): (("floor-walk", 0.7), ("tweepy", 3.0)),
    # "v1.1 at least as good relative to its floor as v2": the v2 bounds
    ("v1", "rx-reactive"): (("floor-walk", 0.8), ("tweepy", 6.0)),
    ("v1", "rx-hook"): (("floor-walk", 0.7), ("tweepy", 3.0)),
}
GOAL_P50_VS_FLOOR = 1.3
GOAL_RSS_GROWTH_MB = 20.0


# --- input --------------------------------------------------------------------------------


@dataclass
class Dataset:
    """One cycle of an API's input: the lines, which of them count, where to stamp them."""

    api: str
    lines: list[bytes]
    counted: list[bool]  # a tweet (v2) or a status (v1.1): what the clients count
    stamp_at: list[int]  # the byte after which "sent_ns" goes
    source: str

    @property
    def per_cycle(self) -> int:
        return sum(self.counted)

    @property
    def mean_bytes(self) -> float:
        return statistics.fmean(len(line) + 2 for line in self.lines)

    def describe(self) -> str:
        return (
            f"{API_NAMES[self.api]}: {self.source}: {len(self.lines):,} lines per cycle, "
            f"{self.per_cycle:,} counted, mean {self.mean_bytes:,.0f} B"
        )


def load_dataset(api: str, generated: bool = False) -> Dataset:
    """The real input when ``../shared`` has it (and ``generated`` is false), else generated."""
    path = INPUTS[api]
    if path.exists() and not generated:
        lines = read_lines(path)
        source = f"{path.name} (real)"
        if api == "v2s":
            lines = [_default_fields(line) for line in lines]
            source = f"{path.name} (real texts, default fields)"
    else:
        lines = {"v2s": _generated_v2s, "v2": _generated_v2, "v1": _generated_v1}[api]()
        source = "generated" + ("" if generated else f" ({path} not found)")
    docs = [json.loads(line) for line in lines]
    if api != "v1":
        keep = [i for i, doc in enumerate(docs) if isinstance(doc.get("data"), dict)]
        lines = [lines[i] for i in keep]
        # Inside the data object, so that on_tweet sees it (tweet.data["sent_ns"]).
        at = [line.index(b"{", line.index(b'"data"')) + 1 for line in lines]
        return Dataset(api, lines, [True] * len(lines), at, source)
    counted = [_is_status(doc) for doc in docs]
    return Dataset(api, lines, counted, [1] * len(lines), source)


def _default_fields(line: bytes) -> bytes:
    """A v2 message reduced to what a stream sends without ``tweet.fields``: ``{"data":
    {"edit_history_tweet_ids":[id],"id":id,"text":...}}`` (X's key order, compact JSON)."""
    tweet = json.loads(line)["data"]
    data = {"edit_history_tweet_ids": [tweet["id"]], "id": tweet["id"], "text": tweet["text"]}
    return json.dumps({"data": data}, ensure_ascii=False, separators=(",", ":")).encode()


def _generated_v2s() -> list[bytes]:
    """Default-field messages with generated texts, when ../shared is absent."""
    return [_default_fields(line) for line in _generated_v2()]


def _is_status(doc: dict[str, Any]) -> bool:
    # tweepy 4.12's test (and rxtweet's): a status has in_reply_to_status_id.
    return "in_reply_to_status_id" in doc


def _generated_v2() -> list[bytes]:
    """rxtweet's generator (filtered-stream shape), when ../shared is absent."""
    import itertools

    from rxtweet.testing import generate_v2_messages

    messages = itertools.islice(generate_v2_messages(0, matching_rules=True), 64)
    return [json.dumps(message).encode() for message in messages]


def _generated_v1() -> list[bytes]:
    """A minute-like v1.1 sample when ../shared is absent: 3,480 lines, one in eleven a
    delete, half the statuses retweets (a nested status with its own user), full user
    objects: about the size and shape of the real file's messages."""
    import random

    rng = random.Random(0)
    words = [
        *("the", "a", "stream", "of", "tweets", "benchmark", "python", "reactive", "happy"),
        *("new", "year", "2021", "🎉", "今日", "Feliz", "Ano", "Novo", "おめでとう"),
    ]
    first_id = 1344908468193435649

    def user(i: int) -> dict[str, Any]:
        return {
            "id": 10_000_000 + i,
            "id_str": str(10_000_000 + i),
            "name": f"Benchmark User {i}",
            "screen_name": f"bench_user_{i}",
            "location": rng.choice([None, "Tokyo", "São Paulo", "Lagos"]),
            "url": None,
            "description": " ".join(rng.choices(words, k=rng.randrange(3, 25))),
            "translator_type": "none",
            "protected": False,
            "verified": False,
            "followers_count": rng.randrange(10_000),
            "friends_count": rng.randrange(5_000),
            "listed_count": rng.randrange(100),
            "favourites_count": rng.randrange(100_000),
            "statuses_count": rng.randrange(100_000),
            "created_at": "Wed Dec 15 11:08:51 +0000 2010",
            "utc_offset": None,
            "time_zone": None,
            "geo_enabled": False,
            "lang": None,
            "contributors_enabled": False,
            "is_translator": False,
            "profile_background_color": "C0DEED",
            "profile_background_image_url": "http://abs.twimg.com/images/themes/theme1/bg.png",
            "profile_background_image_url_https": (
                "https://abs.twimg.com/images/themes/theme1/bg.png"
            ),
            "profile_background_tile": False,
            "profile_link_color": "1DA1F2",
            "profile_sidebar_border_color": "C0DEED",
            "profile_sidebar_fill_color": "DDEEF6",
            "profile_text_color": "333333",
            "profile_use_background_image": True,
            "profile_image_url": f"http://pbs.twimg.com/profile_images/{i}/x_normal.jpg",
            "profile_image_url_https": f"https://pbs.twimg.com/profile_images/{i}/x_normal.jpg",
            "profile_banner_url": f"https://pbs.twimg.com/profile_banners/{i}/1609459200",
            "default_profile": True,
            "default_profile_image": False,
            "following": None,
            "follow_request_sent": None,
            "notifications": None,
        }

    def status(i: int, nested: bool = False) -> dict[str, Any]:
        text = " ".join(rng.choices(words, k=rng.randrange(4, 30)))
        doc: dict[str, Any] = {
            "created_at": "Fri Jan 01 07:29:00 +0000 2021",
            "id": first_id + i,
            "id_str": str(first_id + i),
            "text": text,
            "source": '<a href="http://twitter.com/download/iphone" rel="nofollow">'
            "Twitter for iPhone</a>",
            "truncated": False,
            "in_reply_to_status_id": None,
            "in_reply_to_status_id_str": None,
            "in_reply_to_user_id": None,
            "in_reply_to_user_id_str": None,
            "in_reply_to_screen_name": None,
            "user": user(rng.randrange(100_000)),
            "geo": None,
            "coordinates": None,
            "place": None,
            "contributors": None,
            "is_quote_status": False,
            "quote_count": 0,
            "reply_count": 0,
            "retweet_count": 0,
            "favorite_count": 0,
            "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
            "favorited": False,
            "retweeted": False,
            "filter_level": "low",
            "lang": "en",
        }
        if not nested:
            if rng.random() < 0.54:
                doc["retweeted_status"] = status(i + 1_000_000, nested=True)
            doc["timestamp_ms"] = "1609486140000"
        return doc

    out = []
    for i in range(3480):
        if i % 11 == 10:
            doc = {
                "delete": {
                    "status": {
                        "id": first_id - i,
                        "id_str": str(first_id - i),
                        "user_id": 10_000_000 + i,
                        "user_id_str": str(10_000_000 + i),
                    },
                    "timestamp_ms": "1609486140000",
                }
            }
        else:
            doc = status(i)
        out.append(json.dumps(doc).encode())
    return out


# --- server (its own process) ---------------------------------------------------------------


def serve(api: str, mode: str, n: int, rate: float, generated: bool) -> None:
    """Serve connections until killed. ``throughput``: ``n`` lines of the input, cycled, in
    large ``sendall``s. ``latency``: ``n`` counted lines, one chunk each, ``rate`` per
    second, each stamped just before it is sent."""
    data = load_dataset(api, generated)
    if mode == "throughput":
        serve_connections(send_blocks(throughput_body(data.lines, n)))
        return
    counted = [
        (line, at) for line, at, c in zip(data.lines, data.stamp_at, data.counted, strict=True) if c
    ]

    def message(i: int, now_ns: int) -> bytes:
        line, at = counted[i % len(counted)]
        return frame(stamp(line, now_ns, at))

    serve_connections(lambda conn: send_paced(conn, n, rate, message))


# --- clients (each in its own process) ------------------------------------------------------


class Failures:
    """What went wrong in a hook-based client (which must not reconnect quietly)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, name: str) -> None:
        if self.items:
            raise RuntimeError(f"{name}: {self.items}")


def prepare_floor(api: str) -> Prepare:
    def prepare(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
        """Raw socket, de-chunk, split on ``\\n``, ``orjson.loads`` each line, count."""
        import orjson

        loads = orjson.loads
        request = floor_request(PATHS[api], port)
        counted = 0

        def handle_v2(lines: list[bytes]) -> int:
            nonlocal counted
            before = counted
            for line in lines:
                if not line or counted >= n:
                    continue
                doc = loads(line)
                tweet = doc.get("data")
                if tweet is not None:
                    counted += 1
                    if latency:
                        out.append(time.monotonic_ns() - tweet["sent_ns"])
            return counted - before

        def handle_v1(lines: list[bytes]) -> int:
            nonlocal counted
            before = counted
            for line in lines:
                if not line or counted >= n:
                    continue
                doc = loads(line)
                if "in_reply_to_status_id" in doc:
                    counted += 1
                    if latency:
                        out.append(time.monotonic_ns() - doc["sent_ns"])
            return counted - before

        def run() -> int:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request)
                return floor_read(sock.recv, n, handle_v2 if family(api) == "v2" else handle_v1)

        return run

    return prepare


def prepare_floor_walk(api: str) -> Prepare:
    def prepare(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
        """Raw socket, ``recv_into`` one preallocated buffer, walk the chunks (one message per
        chunk, as X sends them), ``orjson.loads`` a zero-copy ``memoryview`` of each, count."""
        import orjson

        loads = orjson.loads
        request = floor_request(PATHS[api], port)
        v2 = family(api) == "v2"

        def run() -> int:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request)
                return floor_walk(sock, n, v2, latency, out, loads)

        return run

    return prepare


def floor_walk(
    sock: socket.socket,
    n: int,
    v2: bool,
    latency: bool,
    out: list[int],
    loads: Callable[[Any], Any],
) -> int:
    """The chunk-walk floor's read loop (see :func:`prepare_floor_walk`)."""
    size = FLOOR_RECV_SIZE * 4
    buf = bytearray(size)
    view = memoryview(buf)
    end = 0
    while b"\r\n\r\n" not in buf[:end]:
        got = sock.recv_into(view[end:])
        if not got:
            raise ConnectionError("closed before the headers")
        end += got
    pos = buf.find(b"\r\n\r\n", 0, end) + 4
    if b" 200 " not in buf[:16] or b"chunked" not in buf[:pos].lower():
        raise ConnectionError("the floor reader wants a 200 with a chunked body")
    count = 0
    find = buf.find
    while True:
        while True:
            nl = find(b"\r\n", pos, end)
            if nl < 0:
                break
            length = int(buf[pos:nl], 16)
            if length == 0:
                return count
            stop = nl + 2 + length
            if stop + 2 > end:
                break
            if length > 2:  # a message and its CRLF; 2 is a keep-alive
                doc = loads(view[nl + 2 : stop - 2])
                if v2:
                    tweet = doc.get("data")
                    if tweet is not None:
                        count += 1
                        if latency:
                            out.append(time.monotonic_ns() - tweet["sent_ns"])
                elif "in_reply_to_status_id" in doc:
                    count += 1
                    if latency:
                        out.append(time.monotonic_ns() - doc["sent_ns"])
                if count >= n:
                    return count
            pos = stop + 2
        if pos:  # keep the unfinished chunk, at the start
            buf[: end - pos] = buf[pos:end]
            end -= pos
            pos = 0
        if end == size:  # a chunk larger than the buffer: grow it
            view.release()
            buf.extend(bytes(size))
            size *= 2
            view = memoryview(buf)
            find = buf.find
        got = sock.recv_into(view[end:])
        if not got:
            raise ConnectionError("closed before the last chunk")
        end += got


def prepare_tweepy(api: str) -> Prepare:
    def prepare(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
        """tweepy 4.12.1's ``StreamingClient``/``Stream``: own loops, only the URL changed."""
        import tweepy
        import tweepy.streaming
        from requests_oauthlib import OAuth1

        base_url = f"http://127.0.0.1:{port}"
        failures = Failures()
        mixin = _counting_hooks(n, latency, out, failures)

        class LocalStreamingClient(mixin, tweepy.StreamingClient):  # type: ignore[misc,valid-type]
            def _connect(self, method: str, endpoint: str, **kwargs: Any) -> None:
                # StreamingClient._connect in 4.12.1, with the host changed:
                #   self.session.headers["Authorization"] = f"Bearer {self.bearer_token}"
                #   url = f"https://api.twitter.com/2/tweets/{endpoint}/stream"
                #   super()._connect(method, url, **kwargs)      # timeout=21 by default
                self.session.headers["Authorization"] = f"Bearer {self.bearer_token}"
                url = f"{base_url}/2/tweets/{endpoint}/stream"
                tweepy.streaming.BaseStream._connect(self, method, url, **kwargs)

            def on_tweet(self, tweet: Any) -> None:
                self.count_one(tweet.data)

        class LocalStream(mixin, tweepy.Stream):  # type: ignore[misc,valid-type]
            def _connect(self, method: str, endpoint: str, **kwargs: Any) -> None:
                # Stream._connect in 4.12.1, with the host changed:
                #   auth = OAuth1(self.consumer_key, self.consumer_secret,
                #                 self.access_token, self.access_token_secret)
                #   url = f"https://stream.twitter.com/1.1/{endpoint}.json"
                #   super()._connect(method, url, auth=auth, timeout=90, **kwargs)
                auth = OAuth1(
                    self.consumer_key,
                    self.consumer_secret,
                    self.access_token,
                    self.access_token_secret,
                )
                url = f"{base_url}/1.1/{endpoint}.json"
                tweepy.streaming.BaseStream._connect(
                    self, method, url, auth=auth, timeout=90, **kwargs
                )

            def on_status(self, status: Any) -> None:
                self.count_one(status._json)

        # tweepy's defaults otherwise (chunk_size=512 etc.)
        stream = LocalStreamingClient(BEARER) if family(api) == "v2" else LocalStream(*OAUTH)

        def run() -> int:
            stream.sample()
            failures.check("tweepy")
            return int(stream.count)

        return run

    return prepare


def prepare_rx_hook(api: str) -> Prepare:
    def prepare(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
        """rxtweet's tweepy face: the same hook subclasses, ``base_url`` local."""
        import rxtweet

        base_url = f"http://127.0.0.1:{port}"
        failures = Failures()
        mixin = _counting_hooks(n, latency, out, failures)

        class CountingClient(mixin, rxtweet.StreamingClient):  # type: ignore[misc,valid-type]
            def on_tweet(self, tweet: Any) -> None:
                self.count_one(tweet.data)

        class CountingStream(mixin, rxtweet.Stream):  # type: ignore[misc,valid-type]
            def on_status(self, status: Any) -> None:
                self.count_one(status._json)

        stream = (
            CountingClient(BEARER, base_url=base_url)
            if family(api) == "v2"
            else CountingStream(*OAUTH, base_url=base_url)
        )

        def run() -> int:
            stream.sample()
            failures.check("rxtweet")
            return int(stream.count)

        return run

    return prepare


def _counting_hooks(n: int, latency: bool, out: list[int], failures: Failures) -> type:
    """The hooks both tweepy and rxtweet subclasses share: count, stop at N, fail loudly."""

    class CountingHooks:
        count = 0

        def count_one(self, data: dict[str, Any]) -> None:
            if latency:
                out.append(time.monotonic_ns() - data["sent_ns"])
            self.count += 1
            if self.count >= n:
                self.disconnect()  # type: ignore[attr-defined]

        # Fail loudly instead of reconnecting forever (max_retries=inf).
        def _fail(self, what: str) -> None:
            failures.items.append(what)
            self.disconnect()  # type: ignore[attr-defined]

        def on_closed(self, response: Any) -> None:
            # The N-th message may come with the terminating chunk in the same read.
            if self.count < n:
                self._fail(f"stream closed after {self.count} messages")

        def on_connection_error(self) -> None:
            self._fail("connection error")

        def on_request_error(self, status_code: int) -> None:
            self._fail(f"HTTP {status_code}")

        def on_exception(self, exception: Exception) -> None:
            self._fail(f"exception {exception!r}")

    return CountingHooks


def prepare_rx_reactive(api: str, rss_every: int = 0, samples: list[Any] | None = None) -> Prepare:
    def prepare(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
        """``sample_stream().tweets`` / ``.statuses``, ``ops.take(N)``, a counting observer."""
        from reactivex import operators as ops

        import rxtweet

        base_url = f"http://127.0.0.1:{port}"
        if family(api) == "v2":
            client = rxtweet.StreamingClient(BEARER, base_url=base_url)
            source: Any = client.sample_stream().tweets
        else:
            v1 = rxtweet.Stream(*OAUTH, base_url=base_url)
            source = v1.sample_stream().statuses
        counted = 0
        started = 0.0

        def on_next(message: Any) -> None:
            nonlocal counted
            if latency:
                out.append(time.monotonic_ns() - message.data["sent_ns"])
            counted += 1
            if rss_every and counted % rss_every == 0 and samples is not None:
                samples.append((counted, rss_kb(), time.perf_counter() - started))

        def run() -> int:
            nonlocal started
            errors: list[Exception] = []
            finished = threading.Event()

            def on_error(exc: Exception) -> None:
                errors.append(exc)
                finished.set()

            started = time.perf_counter()
            if samples is not None:
                samples.append((0, rss_kb(), 0.0))
            source.pipe(ops.take(n)).subscribe(on_next, on_error, finished.set)
            finished.wait()
            if errors:
                raise errors[0]
            return counted

        return run

    return prepare


PREPARE: dict[str, Callable[[str], Prepare]] = {
    "floor": prepare_floor,
    "floor-walk": prepare_floor_walk,
    "tweepy": prepare_tweepy,
    "rx-hook": prepare_rx_hook,
    "rx-reactive": prepare_rx_reactive,
}
PACKAGES = {
    "floor": ("orjson",),
    "floor-walk": ("orjson",),
    "tweepy": ("tweepy", "requests", "urllib3"),
    "rx-hook": ("rxtweet", "reactivex", "orjson", "requests", "urllib3"),
    "rx-reactive": ("rxtweet", "reactivex", "orjson", "requests", "urllib3"),
}


def client_main(argv: list[str]) -> None:
    """``_client KIND API PORT N [--latency] [--profile] [--rss-every=K]``."""
    kind, api, port, n = argv[:4]
    rss_every = int(next((a.split("=")[1] for a in argv if a.startswith("--rss-every=")), 0))
    samples: list[tuple[int, int, float]] = []
    prepare = prepare_rx_reactive(api, rss_every, samples) if rss_every else PREPARE[kind](api)
    measure = run_client(
        prepare, PACKAGES[kind], kind, int(port), int(n), "--latency" in argv, "--profile" in argv
    )
    measure.rss_samples = samples
    report(measure)


# --- orchestration --------------------------------------------------------------------------


@dataclass
class Results:
    throughput: dict[str, dict[str, list[Run]]]  # api -> client -> runs
    latency: dict[tuple[str, float], dict[str, list[Run]]]  # (api, rate) -> client -> runs
    memory: Measure | None
    profiles: list[tuple[str, Measure]]


class Runner:
    def __init__(self, args: argparse.Namespace, pythons: dict[str, str]) -> None:
        self.args = args
        self.pythons = pythons
        self.versions: dict[str, dict[str, str]] = {}
        self.server_cpu: int | None = 0 if args.pin else None
        self.client_cpu: int | None = 1 if args.pin else None

    def server(self, api: str, mode: str, n: int, rate: float = 0) -> Server:
        source = "generated" if self.args.generated else "real"
        return Server(SCRIPT, [api, mode, str(n), str(rate), source], self.server_cpu)

    def client(
        self, server: Server, kind: str, api: str, n: int, *flags: str, timeout: float = 300
    ) -> Run:
        args = [kind, api, str(server.port), str(n), *flags]
        args += [] if self.client_cpu is None else [f"--cpu={self.client_cpu}"]
        run = measure_once(server, SCRIPT, self.pythons[kind], args, expect=n, timeout=timeout)
        self.versions[kind] = run.measure.versions
        return run


def throughput_counts(data: Dataset, args: argparse.Namespace) -> tuple[int, int]:
    """(lines the server sends, messages the clients count) for one throughput run."""
    if data.api == "v2s":
        return args.v2s_messages, args.v2s_messages
    if data.api == "v2":
        return args.v2_messages, args.v2_messages
    return args.v1_cycles * len(data.lines), args.v1_cycles * data.per_cycle


def run_all(args: argparse.Namespace, runner: Runner, data: dict[str, Dataset]) -> Results:
    clients = [c for c in CLIENTS if c in args.clients.split(",")]
    results = Results({}, {}, None, [])
    for api in args.apis if args.repeats else ():
        sent, n = throughput_counts(data[api], args)
        print(
            f"== {API_NAMES[api]} throughput: {n:,} counted messages ({sent:,} lines, mean "
            f"{data[api].mean_bytes:,.0f} B), {args.repeats} interleaved runs per client ==",
            flush=True,
        )
        runs: dict[str, list[Run]] = {c: [] for c in clients}
        with runner.server(api, "throughput", sent) as server:
            runner.client(server, clients[0], api, n)  # warm-up, discarded
            for _ in range(args.repeats):
                for kind in clients:
                    runs[kind].append(runner.client(server, kind, api, n))
            if args.profile:
                run = runner.client(server, args.profile, api, n, "--profile")
                results.profiles.append((api, run.measure))
        results.throughput[api] = runs
        print_throughput(runs)
        print(flush=True)

    per_round = max(1, args.messages // args.rounds)
    for api in [a for a in args.apis if a in args.latency_apis] if args.messages else ():
        for rate in args.rates:
            # at least a second of messages per round, so each rate is a steady state
            count = max(per_round, int(rate))
            print(
                f"== {API_NAMES[api]} delivery latency: {count * args.rounds:,} messages per "
                f"client at {rate:g} msg/s, one chunk each, sent -> hook/observer; "
                f"{args.rounds} interleaved rounds pooled ==",
                flush=True,
            )
            lat: dict[str, list[Run]] = {c: [] for c in clients}
            with runner.server(api, "latency", count, rate) as server:
                for _ in range(args.rounds):
                    for kind in clients:
                        lat[kind].append(runner.client(server, kind, api, count, "--latency"))
            results.latency[(api, rate)] = lat
            print_latency(lat)
            print(flush=True)

    if args.memory_messages and "v2s" in args.apis:
        n = args.memory_messages
        every = max(1, n // 10)
        print(
            f"== memory: {n:,} default-field API v2 messages through rx-reactive in one "
            f"connection (server loops the input); RSS every {every:,} ==",
            flush=True,
        )
        with runner.server("v2s", "throughput", n) as server:
            run = runner.client(
                server, "rx-reactive", "v2s", n, f"--rss-every={every}", timeout=1800
            )
        results.memory = run.measure
        print_memory(run.measure)
        print(flush=True)
    return results


def best_of(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.measure.wall)


def print_throughput(runs: dict[str, list[Run]]) -> None:
    """Best (shortest wall) run per client, the spread of its runs, and its ratios."""
    best = {kind: best_of(rs) for kind, rs in runs.items()}
    refs = {k: best[k].per_s for k in (*FLOORS, "tweepy") if k in best}
    print(
        f"{'client':<12} {'msg/s':>9} {'spread':>7} {'CPU µs/msg':>10} {'vs floor':>8} "
        f"{'vs walk':>7} {'vs tweepy':>9} {'peak RSS':>9} {'server CPU':>10}"
    )
    for kind, run in best.items():
        m = run.measure
        busy = run.server["server_cpu"] / m.wall
        print(
            f"{kind:<12} {run.per_s:>9,.0f} {spread(runs[kind]):>6.0%} "
            f"{m.cpu / m.lines * 1e6:>10.2f} {fmt_ratio(run.per_s, refs.get('floor')):>8} "
            f"{fmt_ratio(run.per_s, refs.get('floor-walk')):>7} "
            f"{fmt_ratio(run.per_s, refs.get('tweepy')):>9} {m.peak_rss_kb / 1024:>6.1f} MB "
            f"{busy:>9.0%}"
        )
    print("(best of the runs by wall time; spread = (best - worst) / best msg/s)")


def spread(runs: list[Run]) -> float:
    rates = [r.per_s for r in runs]
    return (max(rates) - min(rates)) / max(rates)


def latency_stats(rounds: list[Run]) -> tuple[float, float, float, float]:
    """(p50, p90, p99, max) in ms, all rounds pooled."""
    values = sorted(v for run in rounds for v in run.measure.latencies_ns)
    p50, p90, p99 = (percentile(values, f) / 1e6 for f in (0.5, 0.9, 0.99))
    return p50, p90, p99, values[-1] / 1e6


def print_latency(runs: dict[str, list[Run]]) -> None:
    print(
        f"{'client':<12} {'msgs':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'CPU µs/msg':>10}  p50 per round (ms)"
    )
    for kind, rounds in runs.items():
        count = sum(len(r.measure.latencies_ns) for r in rounds)
        p50, p90, p99, top = latency_stats(rounds)
        cpu_per_msg = sum(r.measure.cpu for r in rounds) / count * 1e6
        per_round = " ".join(
            f"{percentile(sorted(r.measure.latencies_ns), 0.5) / 1e6:.3f}" for r in rounds
        )
        print(
            f"{kind:<12} {count:>5} {p50:>7.3f} {p90:>7.3f} {p99:>7.3f} "
            f"{top:>7.3f} {cpu_per_msg:>10.1f}  {per_round}"
        )


def memory_growth(measure: Measure) -> tuple[float, float]:
    """RSS growth in MB: (from before connecting, from the first sample after it) to the end."""
    samples = measure.rss_samples
    end = samples[-1][1]
    return (end - samples[0][1]) / 1024, (end - samples[1][1]) / 1024


def print_memory(measure: Measure) -> None:
    print(f"{'messages':>10} {'RSS MB':>8} {'growth MB':>9} {'msg/s':>8}")
    base = measure.rss_samples[0][1]
    previous = (0, 0.0)
    for count, rss, seconds in measure.rss_samples:
        label = f"{count:,}" if count else "before"
        rate = (count - previous[0]) / (seconds - previous[1]) if count else 0.0
        print(
            f"{label:>10} {rss / 1024:>8.1f} {(rss - base) / 1024:>+9.1f} "
            + (f"{rate:>8,.0f}" if count else f"{'':>8}")
        )
        previous = (count, seconds)
    total, steady = memory_growth(measure)
    first = measure.rss_samples[1][0]
    print(
        f"growth over {measure.lines:,} messages: {total:+.1f} MB from before connecting, "
        f"{steady:+.1f} MB from message {first:,}; peak RSS {measure.peak_rss_kb / 1024:.1f} MB; "
        f"{measure.lines / measure.wall:,.0f} msg/s overall"
    )


def print_goals(results: Results) -> bool:
    """Each goal of issue 17, met or not, with its numbers; True when all that ran are met."""
    print("== goals (issue 17) ==")
    ok = True

    def line(met: bool, text: str) -> None:
        nonlocal ok
        ok = ok and met
        print(f"  [{'met' if met else 'MISSED'}] {text}")

    for api, runs in results.throughput.items():
        for kind in RX_CLIENTS:
            if kind not in runs:
                continue
            rate = best_of(runs[kind]).per_s
            for ref, least in GOALS.get((api, kind), ()):
                if ref not in runs:
                    continue
                base = best_of(runs[ref]).per_s
                line(
                    rate >= least * base,
                    f"{api} {kind}: {rate:,.0f} msg/s = {rate / base:.2f}x {ref} "
                    f"({base:,.0f}; goal >= {least:g}x)",
                )
    for (api, rate), lat in results.latency.items():
        if "floor" not in lat:
            continue
        floor_p50 = latency_stats(lat["floor"])[0]
        bound = GOAL_P50_VS_FLOOR * floor_p50
        for kind in RX_CLIENTS:
            if kind not in lat:
                continue
            p50, _, p99, _ = latency_stats(lat[kind])
            line(
                p50 <= bound,
                f"{api} at {rate:g} msg/s {kind}: p50 {p50:.3f} ms (p99 {p99:.3f}) vs floor "
                f"{floor_p50:.3f} ms = {p50 / floor_p50:.2f}x "
                f"(goal <= {GOAL_P50_VS_FLOOR:g}x floor)",
            )
    if results.memory is not None:
        total, steady = memory_growth(results.memory)
        line(
            total < GOAL_RSS_GROWTH_MB,
            f"v2s rx-reactive: RSS growth {total:+.1f} MB over {results.memory.lines:,} "
            f"messages, from before connecting ({steady:+.1f} MB after the first "
            f"{results.memory.rss_samples[1][0]:,}) (goal < {GOAL_RSS_GROWTH_MB:g} MB)",
        )
    return ok


#: Messages per client at the small size of an ``--instructions`` run (then three times as
#: many), per input: valgrind runs Python ~50x slower.
INSTRUCTION_MESSAGES = {"v2s": 10_000, "v2": 2_000, "v1": 1_000}


def client_instructions(runner: Runner, kind: str, api: str) -> float:
    """Instructions per message of one client process, end to end (socket to observer),
    counted by callgrind: run at two sizes against the same server, so start-up and imports
    cancel out. The server runs in its own process and is not counted."""
    small = INSTRUCTION_MESSAGES[api]
    totals = []
    for n in (small, 3 * small):
        with (
            runner.server(api, "throughput", 1_000_000_000) as server,
            tempfile.TemporaryDirectory() as tmp,
        ):
            out = os.path.join(tmp, "callgrind.out")
            env = {**os.environ, "PYTHONHASHSEED": "0"}  # dict probes: same count each run
            env.pop("PYTHONPATH", None)
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            command += [runner.pythons[kind], str(SCRIPT), "_client", kind, api]
            command += [str(server.port), str(n)]
            subprocess.run(command, check=True, capture_output=True, env=env, timeout=1800)
            with open(out) as file:
                totals.append(
                    next(
                        int(line.split()[1])
                        for line in file
                        if line.startswith(("summary:", "totals:"))
                    )
                )
    return (totals[1] - totals[0]) / (2 * small)


def print_instructions(args: argparse.Namespace, runner: Runner) -> None:
    """``--instructions``: a table of instructions per message, client by client."""
    clients = [c for c in CLIENTS if c in args.clients.split(",")]
    for api in args.apis:
        print(f"\n== {API_NAMES[api]}: client instructions per message (callgrind) ==")
        counts = {kind: client_instructions(runner, kind, api) for kind in clients}
        print(f"{'client':<14}{'Ir/msg':>10}{'vs floor':>10}{'vs walk':>9}{'vs tweepy':>11}")
        for kind, count in counts.items():
            ratios = [
                f"{counts[other] / count:.2f}x" if other in counts else "-"
                for other in ("floor", "floor-walk", "tweepy")
            ]
            print(f"{kind:<14}{count:>10,.0f}{ratios[0]:>10}{ratios[1]:>9}{ratios[2]:>11}")
    print("(ratios are speed ratios: the other client's instructions / this one's)")


def orchestrate(args: argparse.Namespace, argv: list[str]) -> None:
    from _tweepy_env import ensure_tweepy_python

    started = time.perf_counter()
    clients = args.clients.split(",")
    tweepy_python = str(ensure_tweepy_python()) if "tweepy" in clients else ""
    pythons = {kind: tweepy_python if kind == "tweepy" else args.python for kind in CLIENTS}
    data = {api: load_dataset(api, args.generated) for api in args.apis}
    runner = Runner(args, pythons)
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind")
        print_instructions(args, runner)
        print(f"total run time {time.perf_counter() - started:.0f} s")
        return
    results = run_all(args, runner, data)
    print_goals(results)
    if args.quick:
        print("  (--quick: short runs, best of 2; a verdict near its limit needs a default run)")
    print()
    print_machine(runner.versions, [d.describe() for d in data.values()])
    pinning = "server on CPU 0, clients on CPU 1" if args.pin else "not pinned"
    print(f"{pinning}; total run time {time.perf_counter() - started:.0f} s")
    print(f"reproduce (from the repository root, dev venv active): {command_line(SCRIPT, argv)}")
    for api, measure in results.profiles:
        print(
            f"\n== cProfile of one {args.profile} {api} throughput run "
            f"({measure.lines / measure.wall:,.0f} msg/s under the profiler) =="
        )
        print("(all threads merged: a main thread waiting for a reader thread shows as 'acquire')")
        print(measure.profile)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    pin_from_argv(argv)
    if argv[:1] == ["_serve"]:
        api, mode, n, rate, source = argv[1:6]
        serve(api, mode, int(n), float(rate), source == "generated")
        return
    if argv[:1] == ["_client"]:
        client_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N everywhere (< 60 s)")
    parser.add_argument(
        "--v2s-messages", type=int, help="default-field v2 throughput messages (200,000)"
    )
    parser.add_argument("--v2-messages", type=int, help="v2 throughput messages (20,000)")
    parser.add_argument("--v1-cycles", type=int, help="v1.1 throughput: input repeats (4)")
    parser.add_argument(
        "--repeats", type=int, help="throughput runs per client (7; 0 skips throughput)"
    )
    parser.add_argument(
        "--messages", type=int, help="latency messages per client and API (1,000; 0 skips)"
    )
    parser.add_argument("--rounds", type=int, help="latency rounds per client (6)")
    parser.add_argument(
        "--latency-apis", default="v2s,v2,v1", help="inputs of the latency runs (v2s,v2,v1)"
    )
    parser.add_argument(
        "--rates", default="100,1000,10000", help="latency msg/s, comma-separated (100,1000,10000)"
    )
    parser.add_argument(
        "--memory-messages", type=int, help="memory test messages (1,000,000; 0 skips it)"
    )
    parser.add_argument(
        "--generated", action="store_true", help="generated inputs even if ../shared has the real"
    )
    parser.add_argument(
        "--apis", default="v2s,v2,v1", help="comma-separated subset of v2s (~200 B), v2, v1"
    )
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset")
    parser.add_argument("--profile", choices=CLIENTS, help="add one cProfiled throughput run")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instead: client instructions per message under valgrind (do not swing)",
    )
    parser.add_argument(
        "--pin", action="store_true", help="pin the server to CPU 0 and the clients to CPU 1"
    )
    dev_python = REPO / ".venv/bin/python"
    default_python = dev_python if dev_python.exists() else Path(sys.executable)
    parser.add_argument(
        "--python",
        default=str(default_python),
        help="interpreter for the floor and rxtweet clients (needs rxtweet and orjson)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "v2s_messages": 50_000 if quick else 200_000,
        "v2_messages": 5_000 if quick else 20_000,
        "v1_cycles": 1 if quick else 4,
        # Best of 7: on a shared VM one run in three can be 30-50% slower than the others
        # (the spreads below), and best-of-3 ratios flipped goals from run to run.
        "repeats": 2 if quick else 7,
        "messages": 100 if quick else 1_000,
        # Six rounds, not three: at 100 msg/s a round of a client takes seconds, and this
        # VM's speed drifts over seconds (the floor's p50 moved 0.16-0.33 ms from round to
        # round within one run), so one lucky or unlucky round of the floor moved its
        # pooled p50, and every ratio with it. Finer interleaving, the same messages.
        "rounds": 2 if quick else 6,
        "memory_messages": 100_000 if quick else 1_000_000,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.apis = [api for api in APIS if api in args.apis.split(",")]
    args.rates = [float(rate) for rate in args.rates.split(",") if rate]
    args.latency_apis = args.latency_apis.split(",")
    orchestrate(args, argv)


if __name__ == "__main__":
    main()
