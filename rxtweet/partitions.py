"""Many partition connections, one stream: which partitions, and their merge.

X shards its volume streams (firehose, decahose, compliance, likes) into *partitions*:
disjoint parts of the endpoint's messages, each served on its own connection, all of
``1..N`` needed for the whole stream. The client opens one
:class:`~rxtweet.connection.Connection` per partition, each with its own reconnect loop (so
a partition that fails disturbs no other), and merges them into one
:class:`MergedConnection`, which a stream object (``TweetStream``, ``LikeStream`` …) takes
exactly as it takes one connection.

* :func:`partition_numbers`: ``partitions=`` (an int, an iterable of ints, or ``"all"``) ->
  the sorted partition numbers, checked against the endpoint before anything connects.
* :class:`MergedConnection`: the merge. Its :attr:`~MergedConnection.items` is one shared,
  serialized stream: each partition's items in their order (partitions interleave), events
  tagged with their ``partition``, each failing partition's
  :class:`~rxtweet.events.Errored`, and one :class:`~rxtweet.events.Disconnected` after every
  partition has ended.

Threads: each partition connection has its own reader thread (``rxtweet-reader-N``); the
merge adds none. An item is delivered on the reader thread of its partition, under the
merge's lock, so subscribers see one call at a time (never two partitions at once). The
readers also take turns (``TransportOptions.turns``): one hands a whole read's lines
downstream while the others read or sleep, which keeps 20 threads from fighting over the
GIL line by line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, cast

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from .errors import InvalidStreamParameter
from .events import Disconnected, Errored, StreamEvent
from .operators.share import SharedConnection, SharedSource
from .parse import Parsed, ParseStats
from .transport_base import DEFAULT_CHUNK_SIZE

if TYPE_CHECKING:
    from .connection import Connection, Item
    from .http import StreamRequest
    from .v2.endpoints import Endpoint

__all__ = [
    "PARTITION_CHUNK_SIZE",
    "Key",
    "MergedConnection",
    "MergedStats",
    "partition_numbers",
    "span",
]

log = logging.getLogger(__name__)

#: A merged connection's key: its partition (``None``: unpartitioned) and its replica
#: (``None``: no redundancy; 1 or 2 with ``redundancy=2``).
Key = tuple[int | None, int | None]


def _key_order(entry: tuple[Key, object]) -> tuple[int, int]:
    partition, replica = entry[0]
    return (partition or 0, replica or 0)


#: The read size of a merged partition (unless one was chosen): a partition reads while
#: the others take their turn, so its socket holds more at each read than a lone
#: connection's does, and fewer, larger reads mean fewer turns (benchmarks/partitions.py:
#: 64 KiB reads gave 0.73x of one connection, 1 MiB 0.85-0.9x).
PARTITION_CHUNK_SIZE: Final = 1024 * 1024

_M = TypeVar("_M")


def partition_numbers(partitions: object, *, endpoint: Endpoint) -> tuple[int, ...]:
    """The partitions to connect to, sorted and without repeats; checked before connecting.

    Args:
        partitions: an ``int``, an iterable of ints (``range(1, 21)``, ``[1, 3]``), or
            ``"all"`` (every partition of the endpoint); ``None`` for an unpartitioned
            endpoint.
        endpoint: the :class:`~rxtweet.v2.endpoints.Endpoint`.

    Returns:
        the partition numbers; ``()`` for an unpartitioned endpoint (one plain connection).

    Raises:
        InvalidStreamParameter: (a ``ValueError``, ``parameter="partitions"``) a partition
            outside the endpoint's range, one that is not a whole number, none given where
            the endpoint requires them, or some given where it has none. The message names
            the allowed range.

    >>> from rxtweet.v2.endpoints import ENDPOINTS
    >>> partition_numbers([3, 1, 3], endpoint=ENDPOINTS["firehose"])
    (1, 3)
    >>> partition_numbers("all", endpoint=ENDPOINTS["sample10"])
    (1, 2)
    """
    allowed = endpoint.partitions
    if allowed is None:
        if partitions is None:
            return ()
        raise InvalidStreamParameter(
            f"the {endpoint.name} stream ({endpoint.path}) is not partitioned: "
            f"leave partitions out, not {partitions!r}",
            parameter="partitions",
            value=partitions,
        )
    bounds = f"{allowed.start}-{allowed.stop - 1}"
    if partitions is None:
        raise InvalidStreamParameter(
            f"the {endpoint.name} stream ({endpoint.path}) needs partitions: "
            f"an int, ints or 'all', each from {bounds}",
            parameter="partitions",
            value=None,
        )
    if isinstance(partitions, str):
        if partitions.strip().lower() == "all":
            return tuple(allowed)
        raise InvalidStreamParameter(
            f"partitions must be an int, ints or 'all' (each from {bounds} on the "
            f"{endpoint.name} stream), not {partitions!r}",
            parameter="partitions",
            value=partitions,
        )
    items: list[object] = list(partitions) if isinstance(partitions, Iterable) else [partitions]
    if not items:
        raise InvalidStreamParameter(
            f"partitions is empty: give at least one, each from {bounds} "
            f"on the {endpoint.name} stream (or 'all')",
            parameter="partitions",
            value=partitions,
        )
    numbers: set[int] = set()
    for item in items:
        # bool is an int to Python, never a partition to X.
        if not isinstance(item, int) or isinstance(item, bool) or item not in allowed:
            raise InvalidStreamParameter(
                f"partition {item!r} is out of range: the {endpoint.name} stream "
                f"({endpoint.path}) has partitions {bounds}",
                parameter="partitions",
                value=item,
            )
        numbers.add(item)
    return tuple(sorted(numbers))


def span(partitions: Iterable[int]) -> str:
    """Partition numbers in short: ``(1, 2, 3, 7)`` -> ``"1-3,7"``.

    >>> span(range(1, 21))
    '1-20'
    """
    runs: list[list[int]] = []
    for number in sorted(partitions):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


class MergedStats(ParseStats):
    """The sum of the partitions' :class:`~rxtweet.parse.ParseStats`, read live.

    Read-only: every attribute is computed from the partitions' counters when read (so it
    is as current as theirs). :meth:`snapshot` adds up the partitions' snapshots.
    """

    __slots__ = ("_overflowed", "_parts")

    def __init__(self, parts: Iterable[ParseStats]) -> None:
        # ParseStats.__init__ is not called: its counters are this class's properties.
        self._parts = tuple(parts)
        self._lock = threading.Lock()
        # A bounded hand-off (observe_on_bounded) belongs to the merged stream, not to a
        # partition: its drops are counted here.
        self._overflowed = 0

    @property
    def parts(self) -> tuple[ParseStats, ...]:
        """The partitions' own counters, in partition order."""
        return self._parts

    @property
    def messages(self) -> int:  # type: ignore[override]
        return sum(part.messages for part in self._parts)

    @property
    def keep_alives(self) -> int:  # type: ignore[override]
        return sum(part.keep_alives for part in self._parts)

    @property
    def malformed(self) -> int:  # type: ignore[override]
        return sum(part.malformed for part in self._parts)

    @property
    def too_long(self) -> int:  # type: ignore[override]
        return sum(part.too_long for part in self._parts)

    @property
    def overflowed(self) -> int:  # type: ignore[override]
        return self._overflowed + sum(part.overflowed for part in self._parts)

    def _count_overflow(self, _total: int = 0) -> None:
        with self._lock:
            self._overflowed += 1

    @property
    def by_reason(self) -> dict[str, int]:  # type: ignore[override]
        total: dict[str, int] = {}
        for part in self._parts:
            for reason, count in part.snapshot()["by_reason"].items():
                total[reason] = total.get(reason, 0) + count
        return total

    def _count_malformed(self, reason: str) -> None:
        raise TypeError("MergedStats is read-only: the partitions count")

    def _count_too_long(self, size: int) -> None:
        raise TypeError("MergedStats is read-only: the partitions count")

    def snapshot(self) -> dict[str, Any]:
        """The partitions' snapshots added up (same keys as :meth:`ParseStats.snapshot`)."""
        total: dict[str, Any] = {
            "messages": 0,
            "keep_alives": 0,
            "malformed": 0,
            "by_reason": {},
            "too_long": 0,
            "overflowed": 0,
        }
        for part in self._parts:
            snap = part.snapshot()
            for key in ("messages", "keep_alives", "malformed", "too_long", "overflowed"):
                total[key] += snap[key]
            for reason, count in snap["by_reason"].items():
                total["by_reason"][reason] = total["by_reason"].get(reason, 0) + count
        total["overflowed"] += self._overflowed
        return total


class MergedConnection(SharedSource[Any], Generic[_M]):
    """One stream over several partition connections, with the surface of a
    :class:`~rxtweet.connection.Connection` that :class:`~rxtweet.substreams.Substreams`
    uses (an :class:`~rxtweet.substreams.ItemSource`).

    Args:
        connections: ``{partition: Connection}``, at least one.

    :attr:`items` is shared like a connection's: the first subscriber opens every partition
    connection, the last one to dispose closes them all (at once: each socket is shut down
    from the disposing thread), and a later subscriber opens them afresh. Its contract:

    * each partition's messages in that partition's order; partitions interleave;
    * every event of a partition re-tagged with ``partition=`` (its own
      :class:`~rxtweet.events.Disconnected` is dropped);
    * each failing partition's :class:`~rxtweet.events.Errored` (``partition=`` set); the
      others keep streaming;
    * once every partition has ended, one ``Disconnected()`` (``partition=None``), then
      ``on_error`` with the first partition's error if any failed, else ``on_completed``;
    * one call at a time (a lock serializes the partitions' reader threads).

    A subscriber whose ``on_next`` raises ends the whole merge (as it ends one connection):
    the other partitions are closed and ``on_error`` gets that exception.
    """

    def __init__(
        self, connections: Mapping[int, Connection[_M]] | Mapping[Key, Connection[_M]]
    ) -> None:
        if not connections:
            raise ValueError("MergedConnection needs at least one partition connection")
        keyed: dict[Key, Connection[_M]] = {
            (key if isinstance(key, tuple) else (key, None)): connection
            for key, connection in connections.items()
        }
        self.keyed: dict[Key, Connection[_M]] = dict(sorted(keyed.items(), key=_key_order))
        #: The connections by partition (the first replica's, with ``redundancy=2``).
        self.connections: dict[int, Connection[_M]] = {}
        for (partition, _), connection in self.keyed.items():
            if partition is not None:
                self.connections.setdefault(partition, connection)
        self.partitions: tuple[int, ...] = tuple(self.connections)
        # The partitions take turns a read at a time (TransportOptions.turns): a reader
        # waiting for its turn sleeps instead of competing for the GIL with the others.
        # While it waits its socket fills, so larger reads pay for fewer turns.
        turns = threading.RLock()
        for connection in self.keyed.values():
            options = connection.options
            if options.turns is None:
                chunk_size = options.chunk_size
                if chunk_size == DEFAULT_CHUNK_SIZE:
                    chunk_size = PARTITION_CHUNK_SIZE
                connection.options = replace(options, turns=turns, chunk_size=chunk_size)
        self.requests: tuple[StreamRequest, ...] = tuple(
            connection.request for connection in self.keyed.values()
        )
        self.request: StreamRequest = self.requests[0]
        self.stats: MergedStats = MergedStats(
            connection.stats for connection in self.keyed.values()
        )
        self._shared: SharedConnection[Item[_M]] = SharedConnection(Observable(self._subscribe))

    def __repr__(self) -> str:
        replicas = len(self.keyed) // max(1, len(self.partitions) or 1)
        where = f"partitions={span(self.partitions)} " if self.partitions else ""
        copies = f"replicas={replicas} " if replicas > 1 else ""
        return f"<MergedConnection {where}{copies}{self.request!r}>"

    @property
    def items(self) -> Observable[Item[_M]]:
        """Every partition's messages and events, merged as the class describes, shared."""
        return self._shared.observable

    @property
    def lines(self) -> Observable[bytes]:
        """Cold: each subscription opens every partition's own (reconnecting) connection and
        merges their raw lines (serialized; each partition's in order)."""
        return reactivex.merge(*(connection.lines for connection in self.keyed.values()))

    def _subscribe(
        self, observer: abc.ObserverBase[Item[_M]], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # Reentrant: with a virtual-time scheduler every partition runs on one thread.
        # Held while a subscriber's on_next runs (which may be slow or block).
        lock = threading.RLock()
        # The subscriptions' bookkeeping, never held while emitting: subscribing the next
        # partition must not wait for a slow subscriber busy with the first one's item.
        state = threading.Lock()
        emit = observer.on_next
        remaining = set(self.keyed)
        errors: list[Exception] = []
        subscriptions: dict[Key, abc.DisposableBase] = {}
        # Set when a subscriber's on_next raised: the whole merge ends with that error.
        fatal: list[Exception] = []
        finished = [False]

        def finish_locked() -> None:
            finished[0] = True
            # A subscriber's own failure is the cause of the end; else the first partition's.
            error = fatal[0] if fatal else errors[0] if errors else None
            try:
                emit(Disconnected())
            finally:
                if error is None:
                    observer.on_completed()
                else:
                    observer.on_error(error)

        def end(key: Key, error: Exception | None) -> None:
            others: list[abc.DisposableBase] = []
            with lock:
                with state:
                    if finished[0] or key not in remaining:
                        return
                    remaining.discard(key)
                    if error is not None:
                        errors.append(error)
                    if fatal:
                        others = [subscriptions.pop(p) for p in remaining if p in subscriptions]
                        remaining.clear()
                    if remaining:
                        return
                # Disposed before the end is told, so nothing of theirs runs after it.
                for other in others:
                    other.dispose()
                finish_locked()

        def observer_for(key: Key) -> abc.ObserverBase[Item[_M]]:
            partition, replica = key

            def on_next(item: Item[_M]) -> None:
                if type(item) is not Parsed:
                    if type(item) is Disconnected:
                        return  # the merge's own comes once, after every partition
                    item = replace(cast(StreamEvent, item), partition=partition, replica=replica)
                with lock:
                    if fatal and type(item) is not Errored:
                        return  # a subscriber failed: the merge is ending; only its cause
                        # (the failing partition's Errored) still goes out
                    try:
                        emit(item)
                    except Exception as exc:
                        fatal.append(exc)
                        raise

            def on_error(error: Exception) -> None:
                end(key, error)

            def on_completed() -> None:
                end(key, None)

            return reactivex.Observer(on_next, on_error, on_completed)

        composite = CompositeDisposable()
        for key, connection in self.keyed.items():
            if finished[0]:
                break
            subscription = connection.items.subscribe(observer_for(key), scheduler=scheduler)
            with state:
                if key in remaining:
                    subscriptions[key] = subscription
            composite.add(subscription)
        composite.add(Disposable(lambda: _log_dispose(self.partitions)))
        return composite


def _log_dispose(partitions: tuple[int, ...]) -> None:
    log.debug("merged stream of partitions %s disposed", partitions)
