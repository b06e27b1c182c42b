"""One connection's recovery: when its last item came, what each reconnect asks for.

A :class:`RecoveryTracker` belongs to one subscription of one
:class:`~rxtweet.connection.Connection` (one partition, one replica). The connection asks it
for the request of each attempt (:meth:`~RecoveryTracker.request_for`), tells it about each
data item (:meth:`~RecoveryTracker.on_data`), and hands it a 400 answer to a recovery
request (:meth:`~RecoveryTracker.refused`). The arithmetic is :func:`~rxtweet.recovery.gap.
plan_gap`'s; this class keeps the state and says what happened, as events:

* :class:`~rxtweet.events.Backfilling` when a reconnect asks for ``backfill_minutes``;
* :class:`~rxtweet.events.DataLost` for the part of a gap nothing reaches, once the
  reconnect is answered (:meth:`~RecoveryTracker.on_connected`);
* :class:`~rxtweet.events.Recovering` / :class:`~rxtweet.events.Recovered` around a
  ``start_time``/``end_time`` window (``"full"``), run by the connection's ``open_window``;
* :class:`~rxtweet.events.RecoveryUnavailable` once, when X refuses (400): from then on
  the connection asks for nothing (no backfill, no windows) and goes on.

Threads: :meth:`request_for` runs on the thread that opens an attempt (the subscriber's,
then an ``rxtweet-wait-N`` timer's); :meth:`on_connected`, :meth:`on_data` and
:meth:`refused` on the attempt's reader thread. Attempts of one connection never overlap,
so the state needs no lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ..credentials import scrub_secrets, secrets_of
from ..errors import BadRequest
from ..events import Backfilling, DataLost, RecoveryUnavailable, StreamEvent
from ..http import StreamRequest
from ..snowflake import snowflake_time
from .gap import RecoveryMode, plan_gap

__all__ = ["RECOVERY_PARAMS", "RecoveryTracker", "created_for", "iso_time", "with_params"]

log = logging.getLogger(__name__)

#: The request parameters recovery sets (and a refusal of which is not fatal).
RECOVERY_PARAMS = frozenset({"backfill_minutes", "start_time", "end_time"})


def iso_time(epoch: float) -> str:
    """X's time format, to the second (``2026-11-29T23:04:05Z``).

    >>> iso_time(0.0)
    '1970-01-01T00:00:00Z'
    """
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tweet_created(message: Any) -> float | None:
    """A tweet message's creation time from its Snowflake id (no ``created_at`` needed)."""
    tweet = getattr(message, "data", None)
    if tweet is None:
        return None
    try:
        # A server may lie: "abc", 5,000 digits (int() refuses), 400 digits (too large for
        # a float). None: the item counts at its arrival time, as on an event stream.
        return snowflake_time(tweet.data.get("id"))
    except (ValueError, OverflowError):
        return None


def created_for(kind: str) -> Callable[[Any], float | None] | None:
    """How to read a message's creation time (epoch seconds) on an endpoint ``kind``:
    tweets carry it in their Snowflake id; the event streams have no time that a backfill
    can be told apart by, so ``None`` (their recovered items are counted only on recovery
    windows).

    >>> from rxtweet.v2.convert import to_stream_response
    >>> created_for("tweets")(to_stream_response({"data": {"id": "1528053368912060423"}}))
    1653151287.664
    """
    return _tweet_created if kind == "tweets" else None


def _window_of(request: StreamRequest) -> tuple[object, object]:
    params: Mapping[str, Any] = request.params or {}
    return (params.get("start_time"), params.get("end_time"))


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def with_params(request: StreamRequest, **changes: str | None) -> StreamRequest:
    """``request`` with query parameters set (``None``: removed).

    >>> r = with_params(StreamRequest("GET", "http://x/s", params={"backfill_minutes": "2"}),
    ...                 backfill_minutes=None, start_time="t")
    >>> dict(r.params or {})
    {'start_time': 't'}
    """
    params: dict[str, Any] = dict(request.params or {})
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return replace(request, params=params or None)


class RecoveryTracker:
    """The recovery state of one connection subscription.

    Args:
        mode: ``"backfill"`` or ``"full"`` (see :mod:`rxtweet.recovery.gap`).
        clock: epoch seconds now (``time.time``; a test passes the fake server's clock).
        emit: where the events go (the connection's ordered stream).
        open_window: ``"full"`` only: open a recovery connection for ``(start, end)``.
    """

    def __init__(
        self,
        mode: RecoveryMode,
        *,
        clock: Callable[[], float],
        emit: Callable[[StreamEvent], None],
        open_window: Callable[[float, float], None] | None = None,
    ) -> None:
        self.mode = mode
        self.clock = clock
        self._emit = emit
        #: Opens a recovery window (``"full"``); set by the connection.
        self.open_window = open_window
        #: Epoch seconds of the last data item received (``None``: none yet).
        self.last_item: float | None = None
        #: Why recovery is off (X refused it), or ``None``.
        self.unavailable: str | None = None
        #: When the current attempt was opened, if it asked for a backfill (else ``None``):
        #: items created before it are the backfill's.
        self.replaying_since: float | None = None
        self._attempts = 0
        # The user's own start_time/end_time (a replay they asked for), if any: a 400 to
        # those is their request's failure, not a refused recovery.
        self._user_window: tuple[object, object] = (None, None)
        self._planned: float | None = None  # the gap's start, until the attempt connects

    def on_data(self, created: float | None = None) -> None:
        """A data item arrived (keep-alives and system messages do not count), created at
        ``created`` (epoch seconds) when the message says (a tweet's Snowflake id).

        The gap is measured from the newest creation time seen, which is what X's backfill
        counts in; without one (event streams), from the arrival time. Items a backfill
        re-sends are old, so they do not move it back. A creation time in the future (a
        lying id, a clock ahead) counts as now: else one tweet "from 2090" would make every
        later gap look like none, and its loss silent.
        """
        now = self.clock()
        if created is None or created > now:
            self.last_item = now
        elif self.last_item is None or created > self.last_item:
            self.last_item = created

    def request_for(self, request: StreamRequest) -> StreamRequest:
        """The request of the next attempt (:class:`Backfilling` emitted when it asks).

        The first attempt is ``request`` as the user gave it (their own
        ``backfill_minutes``, if any); so is every attempt before any item has arrived.
        After that, each attempt asks for the gap since the last item. What the backfill
        cannot reach is settled when the attempt connects (:meth:`on_connected`).
        """
        self._attempts += 1
        self._user_window = _window_of(request)
        self.replaying_since = None
        self._planned = None
        if self.unavailable is not None:
            # Refused once (even the user's own backfill_minutes): never ask again, or the
            # same 400 would come back, and this time as the stream's failure.
            return with_params(request, backfill_minutes=None)
        if self._attempts == 1 or self.last_item is None:
            if (request.params or {}).get("backfill_minutes") not in (None, "0", 0):
                self.replaying_since = self.clock()
            return request
        now = self.clock()
        plan = plan_gap(since=self.last_item, now=now, mode=self.mode)
        self._planned = self.last_item
        self.replaying_since = now
        self._emit(Backfilling(plan.backfill_minutes, plan.gap_seconds))
        return with_params(request, backfill_minutes=str(plan.backfill_minutes))

    def on_connected(self) -> None:
        """The attempt was answered 200: settle the part of the gap the backfill does not
        reach, measured now (X counts its ``backfill_minutes`` from when the request
        arrived, a moment after :meth:`request_for` ran): :class:`DataLost` for what
        nothing reaches, a recovery window (``"full"``) for the rest."""
        since = self._planned
        if since is None:
            return
        self._planned = None
        plan = plan_gap(since=since, now=self.clock(), mode=self.mode)
        if plan.lost is not None:
            start, until = plan.lost
            log.warning(
                "the stream was away %.0f s: %.0f s of it cannot be recovered",
                plan.gap_seconds,
                until - start,
            )
            self._emit(DataLost(_dt(start), _dt(until), until - start))
        if plan.window is not None and self.open_window is not None:
            self.open_window(*plan.window)

    def refused(self, error: BaseException, request: StreamRequest) -> bool:
        """Whether ``error`` is X refusing a recovery request (a 400 to a request that asks
        for one); if so, recovery is off from now on and :class:`RecoveryUnavailable` is
        emitted (once). The caller then retries the attempt without recovery."""
        if not isinstance(error, BadRequest) or self.unavailable is not None:
            return False
        asked: Mapping[str, Any] = request.params or {}
        if not RECOVERY_PARAMS & {k for k, v in asked.items() if v not in (None, "0", 0)}:
            return False
        if asked.get("backfill_minutes") in (None, "0", 0) and _window_of(request) == (
            self._user_window
        ):
            return False  # only the user's own window was asked for
        detail = error.problem or f"{error.status_code} {error.reason}".strip()
        # X's text may echo the request (a proxy's, or an X bug, the Authorization header
        # with it): the reason is shown and logged, so no credential of it stays.
        detail = scrub_secrets(detail, secrets_of(request))
        self.unavailable = (
            "X refused a recovery request (400; backfill_minutes and start_time/end_time "
            f"need Enterprise access): {detail}. Going on without recovery."
        )
        log.warning("%s: %s", request.url, self.unavailable)
        self._emit(RecoveryUnavailable(self.unavailable, error.status_code))
        return True
