"""Exactly once: a bounded window of the keys seen, and the stream wrapper that uses it.

Recovery (``backfill_minutes``, a ``start_time``/``end_time`` window) and redundant
connections make X send some messages twice; it does not remove the duplicates
(``x-streaming-protocol.md`` section 9). Here they are dropped:

* :class:`DedupWindow` remembers the keys of the messages that went through, bounded by
  time (``window`` seconds) and by count (``max_items``), so its memory stays flat over
  any run; :meth:`DedupWindow.hold` keeps a stretch of it while a long gap is replayed.
* :class:`Deduplicated` wraps a stream source (a :class:`~rxtweet.connection.Connection`
  or a :class:`~rxtweet.partitions.MergedConnection`: an
  :class:`~rxtweet.substreams.ItemSource`) and passes its items through
  :func:`~rxtweet.operators.deduplicate.deduplicate`, with the keys of
  :func:`~rxtweet.v2.identity.identity_for`. Its ``stats`` add ``duplicates`` (dropped)
  and ``recovered`` (new items that came through a recovery) to the source's counters.

**Defaults.** ``window=360`` s: X's backfill reaches 5 minutes back, so a message
replayed by a backfill was first seen at most 5 minutes (plus the reconnect time) before;
6 minutes cover that. ``max_items=2_000_000``: the full firehose runs at about 6,000
tweets/s, 1.8 million in 5 minutes. The time bound is kept per slice of ``window / 64``
(6 s by default), not per key: a key is remembered at least ``window`` seconds, and
forgotten at most ``window / 64`` later.

**Memory.** About 110-125 bytes per key for a tweet id (a 19-digit ``str``: 68 bytes, its
set slot 30-55 bytes depending on the set's fill, its queue slot 8 bytes), measured by
``benchmarks/dedup.py`` with ``tracemalloc``: 118 B/key at 100,000 keys, 122 B at 360,000,
110 B at 250,000; flat once the window is full. So about 240 MB with the window full at
the default 2 million keys (the full firehose); the sample stream (~50 tweets/s) keeps
about 18,000 keys (2 MB). Compliance and label keys are tuples, a few hundred bytes each,
on far quieter streams.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from reactivex import Observable

from ..operators.deduplicate import deduplicate
from ..operators.share import SharedConnection, SharedSource
from ..parse import ParseStats

if TYPE_CHECKING:
    from ..connection import Item
    from ..http import StreamRequest
    from ..substreams import ItemSource

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_WINDOW",
    "DedupStats",
    "DedupWindow",
    "Deduplicated",
]

log = logging.getLogger(__name__)

_M = TypeVar("_M")

#: Seconds a key is remembered: a 5-minute backfill plus a minute of reconnecting.
DEFAULT_WINDOW: Final = 360.0
#: Keys remembered at most: 5 minutes of the full firehose (~6,000 tweets/s).
DEFAULT_MAX_ITEMS: Final = 2_000_000
#: The time bound is kept per slice of ``window / SLICES`` (not per key: 32 bytes a key less).
SLICES: Final = 64


def _positive_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, not {value!r}")
    return float(value)


class DedupWindow:
    """The keys seen lately, bounded by time and by count: ``seen(key)`` says whether a key
    is a duplicate and remembers it if not.

    Args:
        window: seconds a key is remembered after it was recorded (positive, finite; default
            360: a 5-minute backfill and a minute to reconnect). Keys recorded more than
            ``window`` seconds before the newest are forgotten (at most ``window / 64`` s
            later: time is kept per slice, not per key).
        max_items: keys remembered at most (a positive int; default 2,000,000: 5 minutes of
            the full firehose); beyond it the oldest are forgotten first.
        clock: seconds, never decreasing (default ``time.monotonic``); tests pass a fake.

    Memory is flat over any run: at most ``max_items`` keys, each about 110 bytes for a
    tweet id (measured; see the module doc). :meth:`seen` is O(1) amortized: a set of the keys and a
    queue of them in arrival order, with a few dozen time marks.

    Threads: :meth:`seen` is not locked (it is on every message's path): call it from one
    thread at a time, as a stream's items come. :meth:`hold` and its release may be called
    from any thread.

    Attributes:
        duplicates: how many times :meth:`seen` answered ``True``.

    >>> now = [0.0]
    >>> dedup = DedupWindow(window=60, clock=lambda: now[0])
    >>> dedup.seen("20"), dedup.seen("20"), dedup.duplicates
    (False, True, 1)
    >>> now[0] = 61.0
    >>> dedup.seen("20")  # forgotten: recorded more than 60 s ago
    False
    """

    __slots__ = (
        "_clock",
        "_evicted",
        "_expires",
        "_floor",
        "_hold_lock",
        "_holds",
        "_keys",
        "_open_until",
        "_order",
        "_slice",
        "_slice_end",
        "_slice_first",
        "duplicates",
        "max_items",
        "window",
    )

    def __init__(
        self,
        *,
        window: float = DEFAULT_WINDOW,
        max_items: int = DEFAULT_MAX_ITEMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = _positive_finite("window", window)
        if isinstance(max_items, bool) or not isinstance(max_items, int):
            raise TypeError(f"max_items must be an int, not {max_items!r}")
        if max_items < 1:
            raise ValueError(f"max_items must be positive, not {max_items!r}")
        if not callable(clock):
            raise TypeError(f"clock must be callable, not {clock!r}")
        self.max_items = max_items
        self.duplicates = 0
        self._clock = clock
        self._slice = self.window / SLICES
        self._keys: set[Hashable] = set()
        self._order: deque[Hashable] = deque()
        # One mark per slice of the window: when the slice closes (every key of it was
        # recorded before) and the number of its first key (counted from the first key
        # ever). Not a time per key: 32 bytes a key less, and nothing to update per key.
        self._slice_end: deque[float] = deque()
        self._slice_first: deque[int] = deque()
        self._open_until = -math.inf  # the newest slice's end: a key before it joins it
        self._expires = math.inf  # when the oldest slice leaves the window
        self._evicted = 0  # keys forgotten so far (the first of _order is key number _evicted)
        self._holds: dict[object, float] = {}
        self._hold_lock = threading.Lock()
        # The earliest `since` of the holds (inf: none): keys recorded from then are kept.
        self._floor = math.inf

    def __len__(self) -> int:
        """How many keys are remembered now."""
        return len(self._order)

    def __repr__(self) -> str:
        return (
            f"DedupWindow(window={self.window:g}, max_items={self.max_items}, "
            f"keys={len(self._order)}, duplicates={self.duplicates})"
        )

    def seen(self, key: Hashable) -> bool:
        """``True`` if ``key`` was recorded within the window (a duplicate, counted in
        :attr:`duplicates`); else record it at ``clock()`` and return ``False``."""
        now = self._clock()
        if now > self._expires:
            self._forget_older(now)
        keys = self._keys
        if key in keys:
            self.duplicates += 1
            return True
        keys.add(key)
        order = self._order
        order.append(key)
        if now >= self._open_until:
            self._open_slice(now)
        if len(order) > self.max_items:
            self._forget_oldest()
        return False

    def _open_slice(self, now: float) -> None:
        """Start a slice with the key just recorded (the last of ``_order``)."""
        self._open_until = end = now + self._slice
        self._slice_end.append(end)
        self._slice_first.append(self._evicted + len(self._order) - 1)
        if len(self._slice_end) == 1:
            self._expires = end + self.window

    def _forget_older(self, now: float) -> None:
        """Forget the slices whose every key is older than the window (and than the holds)."""
        # A slice's keys were all recorded before its end: it goes once its end is older.
        floor = self._floor
        cutoff = min(now - self.window, floor)
        ends, firsts = self._slice_end, self._slice_first
        end = self._evicted
        while ends and ends[0] < cutoff:
            ends.popleft()
            firsts.popleft()
            end = firsts[0] if firsts else self._evicted + len(self._order)
        if end > self._evicted:
            keys, order = self._keys, self._order
            for _ in range(end - self._evicted):
                keys.discard(order.popleft())
            self._evicted = end
        if ends:
            expires = ends[0] + self.window
            if expires <= now:
                # Held: nothing goes before the hold is released, which resets _expires.
                # Written before the floor is read again, so a release in between is seen.
                self._expires = math.inf
                if self._floor != floor:
                    self._expires = -math.inf
            else:
                self._expires = expires
        else:
            self._expires = math.inf
            self._open_until = -math.inf

    def _forget_oldest(self) -> None:
        """Forget the oldest key (the count bound)."""
        self._keys.discard(self._order.popleft())
        self._evicted += 1
        firsts = self._slice_first
        # A slice whose keys are all gone is dropped (the next one begins at the new first).
        if len(firsts) > 1 and firsts[1] <= self._evicted:
            firsts.popleft()
            self._slice_end.popleft()
            self._expires = self._slice_end[0] + self.window

    def hold(self, since: float) -> Callable[[], None]:
        """Keep every key recorded at or after ``since`` (a time of :attr:`clock`, not an
        epoch time unless the clock is ``time.time``) until the returned
        release is called (once is enough; more calls do nothing).

        For a replay of a long gap (a ``start_time``/``end_time`` recovery window): the keys
        seen just before the cut must outlive ``window`` until the recovery connection has
        re-sent them. The count bound still applies (memory stays bounded). Holds nest: the
        earliest ``since`` of those not released counts.

        Raises:
            TypeError, ValueError: ``since`` is not a finite number.
        """
        if isinstance(since, bool) or not isinstance(since, int | float):
            raise TypeError(f"since must be a clock time, not {since!r}")
        if not math.isfinite(since):
            raise ValueError(f"since must be finite, not {since!r}")
        token = object()
        with self._hold_lock:
            self._holds[token] = float(since)
            self._floor = min(self._holds.values())

        def release() -> None:
            with self._hold_lock:
                if self._holds.pop(token, None) is None:
                    return
                self._floor = min(self._holds.values(), default=math.inf)
                # After the floor: the next seen() looks again at what the hold kept.
                self._expires = -math.inf

        return release

    @property
    def clock(self) -> Callable[[], float]:
        """The clock keys are recorded by (and :meth:`hold`'s ``since`` is read on). To hold
        from an epoch time ``start`` with the default monotonic clock:
        ``window.hold(window.clock() - (time.time() - start))``."""
        return self._clock

    @property
    def holds(self) -> int:
        """How many holds are not released."""
        return len(self._holds)


class DedupStats(ParseStats):
    """The source's :class:`~rxtweet.parse.ParseStats`, read live, plus ``duplicates``
    (messages dropped) and ``recovered`` (new messages that came through a recovery).

    Read-only (like :class:`~rxtweet.partitions.MergedStats`): every attribute is read from
    the source's counters and the :class:`Deduplicated` when read; only a bounded
    hand-off's drops (``overflowed``) are passed on to the source to count. ``messages`` is the
    source's count of lines parsed, duplicates included: the messages delivered are
    ``messages - duplicates``.
    """

    __slots__ = ("_dedup", "_source")

    def __init__(self, source: ParseStats, dedup: Deduplicated[Any]) -> None:
        # ParseStats.__init__ is not called: its counters are this class's properties.
        self._source = source
        self._dedup = dedup
        self._lock = threading.Lock()

    @property
    def source(self) -> ParseStats:
        """The source's own counters."""
        return self._source

    @property
    def messages(self) -> int:  # type: ignore[override]
        return self._source.messages

    @property
    def keep_alives(self) -> int:  # type: ignore[override]
        return self._source.keep_alives

    @property
    def malformed(self) -> int:  # type: ignore[override]
        return self._source.malformed

    @property
    def too_long(self) -> int:  # type: ignore[override]
        return self._source.too_long

    @property
    def overflowed(self) -> int:  # type: ignore[override]
        return self._source.overflowed

    @property
    def by_reason(self) -> dict[str, int]:  # type: ignore[override]
        by_reason: dict[str, int] = self._source.snapshot()["by_reason"]
        return by_reason

    @property
    def duplicates(self) -> int:
        """Messages dropped as duplicates."""
        return self._dedup.window.duplicates

    @property
    def recovered(self) -> int:
        """New (not duplicate) messages that came through a recovery."""
        return self._dedup.recovered

    def _count_malformed(self, reason: str) -> None:
        raise TypeError("DedupStats is read-only: the source counts")

    def _count_too_long(self, size: int) -> None:
        raise TypeError("DedupStats is read-only: the source counts")

    def _count_overflow(self, _total: int = 0) -> None:
        # A bounded hand-off of the stream object counts its drops here: the source keeps
        # them (they are after parsing, and after this wrapper).
        self._source._count_overflow(_total)

    def snapshot(self) -> dict[str, Any]:
        """The source's :meth:`~rxtweet.parse.ParseStats.snapshot` with ``duplicates`` and
        ``recovered`` added."""
        snap = self._source.snapshot()
        snap["duplicates"] = self.duplicates
        snap["recovered"] = self.recovered
        return snap

    def __repr__(self) -> str:
        return (
            f"DedupStats(messages={self.messages}, keep_alives={self.keep_alives}, "
            f"malformed={self.malformed}, by_reason={self.by_reason!r}, "
            f"too_long={self.too_long}, overflowed={self.overflowed}, "
            f"duplicates={self.duplicates}, "
            f"recovered={self.recovered})"
        )


class Deduplicated(SharedSource[Any], Generic[_M]):
    """A stream source with its duplicates dropped: each message once, by its identity.

    An :class:`~rxtweet.substreams.ItemSource` over another (a
    :class:`~rxtweet.connection.Connection` or a
    :class:`~rxtweet.partitions.MergedConnection`), which a stream object takes as it takes
    a connection.

    Args:
        source: the items to de-duplicate.
        identity: a message -> its key (``None``: always passes), e.g.
            ``identity_for(endpoint.kind)`` (:func:`rxtweet.v2.identity.identity_for`).
        window, max_items, clock: the :class:`DedupWindow`'s bounds and clock.

    :attr:`items` is the source's items through
    :func:`~rxtweet.operators.deduplicate.deduplicate`, shared as a connection's are (the
    first subscriber subscribes to the source, the last one to dispose leaves it; a later
    subscriber starts afresh): every event passes, a message passes unless its key was seen
    within the window; order is kept. A duplicate never reaches a subscriber. The window
    is this object's for its whole life (a new subscription still knows the keys of the
    last one, within the window's bounds).

    :attr:`lines` are the source's raw lines, **not** de-duplicated (a line is not parsed,
    so it has no identity).

    Recovery accounting: a connection that emits a message obtained by a recovery calls
    :meth:`mark_recovered` on its emitting thread just before it emits it; the next
    message on that thread consumes the mark, and counts in ``stats.recovered`` if it is
    not a duplicate.

    Threads: items are de-duplicated on the thread that emits them, one at a time (the
    source serializes them); no thread is added.

    Attributes:
        source: the wrapped source.
        identity: the key function.
        window: the :class:`DedupWindow` (``window.hold(since)`` for a recovery window).
        recovered: new messages that came through a recovery (also ``stats.recovered``).
        pending: recovery marks set and not yet consumed (all threads).
    """

    def __init__(
        self,
        source: ItemSource[_M],
        identity: Callable[[Any], Hashable | None],
        *,
        window: float = DEFAULT_WINDOW,
        max_items: int = DEFAULT_MAX_ITEMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not callable(identity):
            raise TypeError(f"identity must be callable, not {identity!r}")
        self.source = source
        self.identity = identity
        self.window = DedupWindow(window=window, max_items=max_items, clock=clock)
        self.recovered = 0
        self._marks = threading.local()
        # Marks set and not yet consumed (all threads): while 0, a message costs no look-up
        # of the thread-local (which is slow: ~0.1-0.4 us) and no call.
        self.pending = 0
        self._marks_lock = threading.Lock()
        self.stats: DedupStats = DedupStats(source.stats, self)
        self._shared: SharedConnection[Item[_M]] = SharedConnection(
            source.items.pipe(
                deduplicate(identity, self.window, marks=self),
            )
        )

    def __repr__(self) -> str:
        return f"<Deduplicated {self.source!r}>"

    @property
    def request(self) -> StreamRequest:
        """The source's (first) request."""
        return self.source.request

    @property
    def partitions(self) -> tuple[int, ...]:
        """The source's partitions (``()`` when it has none)."""
        partitions: tuple[int, ...] = getattr(self.source, "partitions", ())
        return partitions

    @property
    def items(self) -> Observable[Item[_M]]:
        """The source's items, each message once; shared (see the class)."""
        return self._shared.observable

    @property
    def lines(self) -> Observable[bytes]:
        """The source's raw lines, cold and **not** de-duplicated."""
        return self.source.lines

    def mark_recovered(self) -> None:
        """The next message emitted on this thread came through a recovery.

        Call it on the emitting thread just before emitting the message. The mark is this
        thread's and is consumed by the next message on it (a message between a mark and
        its item would take it); that message counts in ``stats.recovered`` unless it is a
        duplicate. Marking twice before one message counts once.
        """
        marks = self._marks
        if marks.__dict__.get("marked"):
            return
        marks.marked = True
        with self._marks_lock:
            self.pending += 1

    def judged(self, passed: bool) -> None:
        """A message's verdict, on its emitting thread (called by the operator while marks
        are :attr:`pending`): consume this thread's mark, count the message if it passed."""
        if self._marks.__dict__.pop("marked", False):
            with self._marks_lock:
                self.pending -= 1
                if passed:
                    self.recovered += 1
