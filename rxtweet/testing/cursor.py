"""The message cursor one :class:`~rxtweet.testing.FakeStreamServer` shares among its connections.

Messages are taken in order: first the ones a cut connection put back, then the source, then
those fed later. A message leaves the cursor when a connection takes it; one that could not be
written completely is pushed back at the front, so a correct client sees each exactly once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from .values import MessageSource


def _encode(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    return orjson.dumps(item)


def _jsonl_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\n")
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip():
                yield line


class _Cursor:
    """The global message cursor: re-queued messages first, then the source, then fed ones."""

    def __init__(self, source: MessageSource) -> None:
        self._lock = threading.Lock()
        self._front: deque[bytes] = deque()
        self._fed: deque[bytes] = deque()
        iterable: Iterable[Any]
        if isinstance(source, Mapping | bytes | bytearray):
            raise TypeError(
                "messages must be a list/iterable of messages or a JSONL path, "
                f"not a single {type(source).__name__}"
            )
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"no JSONL file at {path}")
            iterable = _jsonl_lines(path)
        else:
            iterable = source
        self._source: Iterator[Any] | None = iter(iterable)

    def take(self) -> bytes | None:
        with self._lock:
            return self._next(consume=True)

    def peek(self) -> bytes | None:
        with self._lock:
            return self._next(consume=False)

    def peek_shaped(self, shape: Callable[[bytes], bytes | None]) -> bytes | None:
        """The next message as ``shape`` makes it, dropping those it turns into ``None``."""
        with self._lock:
            while (message := self._next(consume=False)) is not None:
                wire = shape(message)
                if wire is not None:
                    return wire
                self._front.popleft()
            return None

    def _next(self, *, consume: bool) -> bytes | None:
        if not self._front:
            item = self._pull()
            if item is None:
                return None
            self._front.append(item)
        return self._front.popleft() if consume else self._front[0]

    def _pull(self) -> bytes | None:
        while self._source is not None:
            try:
                item = next(self._source)
            except StopIteration:
                self._source = None
                break
            return _encode(item)
        return self._fed.popleft() if self._fed else None

    def push_front(self, items: list[bytes]) -> None:
        if items:
            with self._lock:
                self._front.extendleft(reversed(items))

    def feed(self, items: Iterable[Any]) -> None:
        encoded = [_encode(item) for item in items]
        with self._lock:
            self._fed.extend(encoded)

    def close(self) -> None:
        with self._lock:
            source, self._source = self._source, None
        close = getattr(source, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


#: Messages a partition nobody reads keeps at most; older ones are dropped (as X drops what
#: nobody reads), so an endless source served to one partition does not grow without bound.
PARTITION_BACKLOG = 100_000


class _ShardedCursor:
    """One endpoint's message set split into ``n`` disjoint partitions of a base cursor.

    The k-th message this endpoint pulls from ``base`` (k = 0, 1, ...) belongs to partition
    ``k % n + 1``, whichever partition's connection pulled it: the union of partitions 1..n
    is the whole set, each message in exactly one. Each partition keeps its own queue, so a
    message a cut connection could not finish goes back to the front of ITS partition.
    """

    def __init__(self, base: _Cursor, partitions: int) -> None:
        self._base = base
        self._n = partitions
        self._lock = threading.Lock()
        self._queues: dict[int, deque[bytes]] = {p: deque() for p in range(1, partitions + 1)}
        self._pulled = 0
        self.dropped = 0

    def view(self, partition: int) -> _PartitionView:
        """The cursor one connection to ``partition`` reads from."""
        if partition not in self._queues:
            raise ValueError(f"partition {partition} is not between 1 and {self._n}")
        return _PartitionView(self, partition)

    def _next(self, partition: int, *, consume: bool) -> bytes | None:
        queue = self._queues[partition]
        while not queue:
            item = self._base.take()
            if item is None:
                return None
            owner = self._pulled % self._n + 1
            self._pulled += 1
            target = self._queues[owner]
            target.append(item)
            if len(target) > PARTITION_BACKLOG:
                target.popleft()
                self.dropped += 1
        return queue.popleft() if consume else queue[0]

    def take(self, partition: int) -> bytes | None:
        with self._lock:
            return self._next(partition, consume=True)

    def peek(self, partition: int) -> bytes | None:
        with self._lock:
            return self._next(partition, consume=False)

    def peek_shaped(self, partition: int, shape: Callable[[bytes], bytes | None]) -> bytes | None:
        with self._lock:
            while (message := self._next(partition, consume=False)) is not None:
                wire = shape(message)
                if wire is not None:
                    return wire
                self._queues[partition].popleft()
            return None

    def push_front(self, partition: int, items: list[bytes]) -> None:
        if items:
            with self._lock:
                self._queues[partition].extendleft(reversed(items))


class _PartitionView:
    """The cursor interface (take/peek/peek_shaped/push_front) of one partition."""

    __slots__ = ("_partition", "_sharded")

    def __init__(self, sharded: _ShardedCursor, partition: int) -> None:
        self._sharded = sharded
        self._partition = partition

    def take(self) -> bytes | None:
        return self._sharded.take(self._partition)

    def peek(self) -> bytes | None:
        return self._sharded.peek(self._partition)

    def peek_shaped(self, shape: Callable[[bytes], bytes | None]) -> bytes | None:
        return self._sharded.peek_shaped(self._partition, shape)

    def push_front(self, items: list[bytes]) -> None:
        self._sharded.push_front(self._partition, items)
