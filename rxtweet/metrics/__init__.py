"""Observability of a stream: periodic metrics, and a Prometheus exporter.

* :func:`metrics_of` (``stream.metrics(interval)``): an ``Observable`` of
  :class:`StreamMetrics`, one per interval: rates, reconnects and their causes, X's
  notices, connection state per partition, and lag (p50/p99/max) from the tweet ids'
  Snowflake times. Passive: it opens no connection of its own.
* :func:`serve_prometheus` and :class:`~rxtweet.metrics.prometheus.StreamCollector`: the
  same figures as Prometheus metrics (``rxtweet_messages_total``, ``rxtweet_lag_seconds``
  …). They need the optional ``prometheus-client`` (``pip install rxtweet[metrics]``); this
  package imports without it, and only using them raises an ``ImportError`` that says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .stream import (
    LAG_EXACT,
    LAG_STRIDE,
    MAX_LAG_SAMPLES,
    SNOWFLAKE_EPOCH_MS,
    PartitionMetrics,
    StreamMetrics,
    cause_label,
    lag_of,
    metrics_of,
    snowflake_time,
)

if TYPE_CHECKING:
    from .prometheus import MetricsServer, StreamCollector, serve_prometheus

__all__ = [
    "LAG_EXACT",
    "LAG_STRIDE",
    "MAX_LAG_SAMPLES",
    "SNOWFLAKE_EPOCH_MS",
    "MetricsServer",
    "PartitionMetrics",
    "StreamCollector",
    "StreamMetrics",
    "cause_label",
    "lag_of",
    "metrics_of",
    "serve_prometheus",
    "snowflake_time",
]

_PROMETHEUS = frozenset({"MetricsServer", "StreamCollector", "serve_prometheus"})


def __getattr__(name: str) -> Any:
    # The Prometheus part is imported on first use (it is cheap without prometheus-client
    # too: the ImportError comes only when a collector or server is made).
    if name in _PROMETHEUS:
        from . import prometheus

        return getattr(prometheus, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
