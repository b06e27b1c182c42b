"""A stream's metrics as Prometheus metrics: :class:`StreamCollector` and
:func:`serve_prometheus`.

Needs ``prometheus-client`` (the ``metrics`` extra: ``pip install rxtweet[metrics]``). This
module imports without it; making a collector or a server without it raises an
``ImportError`` that says what to install.

The collector taps each stream passively (as :func:`rxtweet.metrics.metrics_of` does: it
opens no connection) and, at each scrape, adds what happened since the previous scrape to
its counters. Metrics (every one labelled ``stream``):

==========================================  =========  =====================================
name                                        type       what
==========================================  =========  =====================================
``rxtweet_messages_total{partition}``       counter    parsed messages (``partition=""``
                                                       on an unpartitioned stream)
``rxtweet_tweets_total``                    counter    messages carrying a tweet
``rxtweet_bytes_total``                     counter    bytes of the messages
``rxtweet_keep_alives_total``               counter    keep-alive lines
``rxtweet_malformed_total``                 counter    lines that could not be parsed
``rxtweet_reconnects_total{cause}``         counter    reconnects, by
                                                       :func:`~rxtweet.metrics.cause_label`
``rxtweet_duplicates_total``                counter    duplicates dropped
``rxtweet_nats_published_total``            counter    stored by NATS JetStream (``--to``)
``rxtweet_nats_duplicates_total``           counter    acked by JetStream as duplicates
``rxtweet_nats_retried_total``              counter    sent to JetStream again
``rxtweet_overflow_drops_total``            counter    items dropped by bounded hand-offs
``rxtweet_limit_notices_total``             counter    v1.1 ``limit`` notices
``rxtweet_limit_track``                     gauge      X's latest undelivered total (v1.1)
``rxtweet_operational_disconnects_total``   counter    X's disconnect notices
``rxtweet_falling_behind_total``            counter    v1.1 ``FALLING_BEHIND`` warnings
``rxtweet_queue_percent_full``              gauge      the latest warning's ``percent_full``
``rxtweet_connection_state{partition,       gauge      1 for the partition's current state,
state}``                                               0 for the others
``rxtweet_lag_seconds{quantile}``           summary    tweet lag: p50/p99 and max
                                                       (``quantile="1"``) since the previous
                                                       scrape (NaN without tweets), and the
                                                       cumulative ``_sum``/``_count``
==========================================  =========  =====================================
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

from .stream import STATES, StreamMetrics, _Recorder, tap_of

__all__ = ["INSTALL_HINT", "MetricsServer", "StreamCollector", "serve_prometheus"]

log = logging.getLogger(__name__)

#: What the ``ImportError`` without ``prometheus-client`` tells the user to run.
INSTALL_HINT: Final = "pip install rxtweet[metrics]"

#: The counters: metric name (without ``_total``), StreamMetrics field, help text.
_COUNTERS: Final = (
    ("rxtweet_tweets", "tweets", "Messages carrying a tweet."),
    ("rxtweet_bytes", "bytes", "Bytes of the messages received (lines without CRLF)."),
    ("rxtweet_keep_alives", "keep_alives", "Keep-alive lines received."),
    ("rxtweet_malformed", "malformed", "Lines that could not be parsed (dropped)."),
    ("rxtweet_duplicates", "duplicates", "Duplicate items dropped."),
    ("rxtweet_nats_published", "published", "Messages NATS JetStream stored."),
    ("rxtweet_nats_duplicates", "publish_duplicates", "Messages JetStream acked as duplicates."),
    ("rxtweet_nats_retried", "publish_retried", "Messages sent to JetStream again."),
    ("rxtweet_overflow_drops", "overflow_drops", "Items dropped by bounded hand-offs."),
    ("rxtweet_limit_notices", "limit_notices", "v1.1 limit notices from X."),
    (
        "rxtweet_operational_disconnects",
        "operational_disconnects",
        "X's disconnect notices (v2 operational-disconnect, v1.1 disconnect).",
    ),
    ("rxtweet_falling_behind", "falling_behind", "v1.1 FALLING_BEHIND warnings from X."),
)


def _prometheus() -> Any:
    """The ``prometheus_client`` module, or an ``ImportError`` naming the extra."""
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:
        raise ImportError(
            "rxtweet's Prometheus exporter needs prometheus-client: " + INSTALL_HINT
        ) from exc
    return prometheus_client


class _Tracked:
    """One stream's tap and cumulative figures, in a :class:`StreamCollector`."""

    def __init__(self, stream: Any, name: str, clock: Callable[[], float]) -> None:
        self.name = name
        self.recorder = _Recorder(stream, clock)
        self.untap = tap_of(stream, self.recorder)
        self.totals: dict[str, float] = {field: 0 for _, field, _ in _COUNTERS}
        self.messages: dict[int | None, int] = {}
        self.causes: dict[str, int] = {}
        self.lag_sum = 0.0
        self.lag_count = 0
        self.last: StreamMetrics | None = None

    def add(self, metrics: StreamMetrics) -> None:
        for _, field, _ in _COUNTERS:
            self.totals[field] += getattr(metrics, field)
        for partition, part in metrics.partitions.items():
            self.messages[partition] = self.messages.get(partition, 0) + part.messages
        for cause, count in metrics.reconnect_causes.items():
            self.causes[cause] = self.causes.get(cause, 0) + count
        self.lag_sum += metrics.lag_sum
        self.lag_count += metrics.lag_count
        self.last = metrics


def stream_name(stream: Any) -> str:
    """The default ``stream`` label: the path of the stream's request (``/2/tweets/sample/
    stream``), else the stream's class name."""
    request = getattr(getattr(stream, "connection", None), "request", None)
    url = getattr(request, "url", None)
    if isinstance(url, str) and "://" in url:
        # The path only: never the user:password of the authority, nor a query (a token
        # may ride in it; and labels must stay few and short).
        return urlsplit(url).path or "/"
    return type(stream).__name__


def _label(name: str) -> str:
    """``name`` as a label value that the exposition can encode (UTF-8): an unpaired
    surrogate (a name decoded with ``surrogateescape``) would fail every scrape."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


class StreamCollector:
    """A Prometheus collector of one or more streams (register it on your registry).

    ::

        from prometheus_client import REGISTRY
        collector = StreamCollector(stream)         # label stream="/2/tweets/sample/stream"
        REGISTRY.register(collector)

    Each stream is tapped passively from :meth:`add` until :meth:`close` (no connection is
    opened). At each scrape (:meth:`collect`) the figures since the previous scrape are
    added to the counters; the lag quantiles cover that span only. ``collect`` is
    thread-safe (scrapes may run concurrently). Names and labels: see the module.

    Args:
        stream: a stream to add at once (optional).
        name: its ``stream`` label (default :func:`stream_name`).
        clock: Unix seconds, for lag (tests pass a virtual one).

    Raises:
        ImportError: ``prometheus-client`` is not installed (``pip install rxtweet[metrics]``).
    """

    def __init__(
        self,
        stream: Any = None,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._core = _prometheus().core
        self._clock = clock
        self._lock = threading.Lock()
        self._tracked: list[_Tracked] = []
        if stream is not None:
            self.add(stream, name=name)

    def add(self, stream: Any, *, name: str | None = None) -> None:
        """Track ``stream`` too, under the label ``stream=name``.

        Raises:
            ValueError: a stream with that label is tracked already.
            TypeError: the stream's items cannot be tapped.
        """
        label = _label(name if name is not None else stream_name(stream))
        with self._lock:
            if any(t.name == label for t in self._tracked):
                raise ValueError(f"a stream named {label!r} is tracked already: pass name=")
            self._tracked.append(_Tracked(stream, label, self._clock))

    def close(self) -> None:
        """Stop observing every stream (idempotent); later scrapes report the last totals."""
        with self._lock:
            tracked = list(self._tracked)
        for each in tracked:
            each.untap.dispose()

    def collect(self) -> Iterator[Any]:
        """The metric families (called by ``prometheus_client`` at each scrape)."""
        core = self._core
        with self._lock:
            for each in self._tracked:
                each.add(each.recorder.snapshot())
            tracked = list(self._tracked)
            messages = core.CounterMetricFamily(
                "rxtweet_messages", "Parsed messages received.", labels=["stream", "partition"]
            )
            counters = {
                metric: core.CounterMetricFamily(metric, text, labels=["stream"])
                for metric, _, text in _COUNTERS
            }
            reconnects = core.CounterMetricFamily(
                "rxtweet_reconnects", "Reconnects, by cause.", labels=["stream", "cause"]
            )
            state = core.GaugeMetricFamily(
                "rxtweet_connection_state",
                "1 for the connection's current state (per partition), 0 for the others.",
                labels=["stream", "partition", "state"],
            )
            limit_track = core.GaugeMetricFamily(
                "rxtweet_limit_track",
                "X's latest running total of undelivered statuses (v1.1 limit notices).",
                labels=["stream"],
            )
            percent_full = core.GaugeMetricFamily(
                "rxtweet_queue_percent_full",
                "The latest FALLING_BEHIND warning's percent_full (v1.1).",
                labels=["stream"],
            )
            lag = core.Metric(
                "rxtweet_lag_seconds",
                "Tweet lag: receive time minus the id's Snowflake creation time.",
                "summary",
            )
            for each in tracked:
                stream = each.name
                for partition, count in sorted(
                    each.messages.items(), key=lambda kv: -1 if kv[0] is None else kv[0]
                ):
                    label = "" if partition is None else str(partition)
                    messages.add_metric([stream, label], count)
                for metric, field, _ in _COUNTERS:
                    counters[metric].add_metric([stream], each.totals[field])
                for cause, count in sorted(each.causes.items()):
                    reconnects.add_metric([stream, cause], count)
                last = each.last
                if last is None:
                    continue
                for partition, part in last.partitions.items():
                    label = "" if partition is None else str(partition)
                    for name in STATES:
                        state.add_metric([stream, label, name], 1 if part.state == name else 0)
                if last.limit_track is not None:
                    limit_track.add_metric([stream], last.limit_track)
                if last.percent_full is not None:
                    percent_full.add_metric([stream], last.percent_full)
                for quantile, value in (
                    ("0.5", last.lag_p50),
                    ("0.99", last.lag_p99),
                    ("1", last.lag_max),
                ):
                    lag.add_sample(
                        "rxtweet_lag_seconds",
                        {"stream": stream, "quantile": quantile},
                        math.nan if value is None else value,
                    )
                lag.add_sample("rxtweet_lag_seconds_sum", {"stream": stream}, each.lag_sum)
                lag.add_sample("rxtweet_lag_seconds_count", {"stream": stream}, each.lag_count)
        yield messages
        yield from counters.values()
        yield reconnects
        yield state
        yield limit_track
        yield percent_full
        yield lag


class MetricsServer:
    """A running Prometheus endpoint (from :func:`serve_prometheus`): ``url``, ``port``,
    the ``collector`` and ``registry``; :meth:`close` (or leaving a ``with`` block) stops
    the HTTP server, joins its thread and stops observing the stream."""

    def __init__(
        self, server: Any, thread: threading.Thread, collector: StreamCollector, registry: Any
    ) -> None:
        self._server = server
        self._thread = thread
        self.collector = collector
        self.registry = registry
        self._closed = False
        self.addr: str = server.server_address[0]
        self.port: int = server.server_address[1]

    @property
    def url(self) -> str:
        """``http://ADDR:PORT/metrics``."""
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and observing (idempotent, from any thread but the server's)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self.collector.close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}{' closed' if self._closed else ''}>"


def serve_prometheus(
    stream: Any,
    port: int = 9464,
    addr: str = "127.0.0.1",
    *,
    name: str | None = None,
    clock: Callable[[], float] = time.time,
) -> MetricsServer:
    """Serve ``stream``'s metrics for Prometheus at ``http://addr:port/metrics`` (and ``/``).

    The server has its own registry holding one :class:`StreamCollector` (no process or
    platform metrics); it runs on a daemon thread named ``rxtweet-metrics-http``. It observes
    the stream passively: it opens no connection. ``port=0`` picks a free port (see
    :attr:`MetricsServer.port`). The default ``addr`` answers only this machine; pass
    ``"0.0.0.0"`` for others to scrape it.

    Raises:
        ImportError: ``prometheus-client`` is not installed (``pip install rxtweet[metrics]``).
        OSError: the address cannot be bound (the port is taken).
    """
    prometheus_client = _prometheus()
    collector = StreamCollector(stream, name=name, clock=clock)
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        server, thread = prometheus_client.start_http_server(port, addr=addr, registry=registry)
    except BaseException:
        collector.close()
        raise
    thread.name = "rxtweet-metrics-http"
    metrics = MetricsServer(server, thread, collector, registry)
    log.info("serving Prometheus metrics at %s", metrics.url)
    return metrics
