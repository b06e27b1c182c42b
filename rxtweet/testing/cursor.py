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
