"""``deduplicate``: drop the parsed messages a window has already seen, keep everything else.

The operator behind :class:`~rxtweet.recovery.dedup.Deduplicated`: over an item stream
(``Parsed`` messages and :class:`~rxtweet.events.StreamEvent` s, as a
:class:`~rxtweet.connection.Connection` emits them) it asks a window (anything with
``seen(key) -> bool``, normally a :class:`~rxtweet.recovery.dedup.DedupWindow`) about each
message's identity and lets only the first of each through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from reactivex import Observable, abc

from .pass_through import pass_through

__all__ = ["RecoveryMarks", "SeenWindow", "deduplicate"]

log = logging.getLogger(__name__)


class SeenWindow(Protocol):
    """What :func:`deduplicate` needs of its window: ``seen(key)`` is ``True`` for a key
    already recorded (a duplicate) and records a new one (``False``)."""

    def seen(self, key: Hashable) -> bool: ...


class RecoveryMarks(Protocol):
    """Where :func:`deduplicate` reports each message's verdict while marks are pending.

    ``pending`` is read for every message (an attribute, not a call: the common case,
    nothing marked, costs one read); while it is non-zero, ``judged(passed)`` is called with
    each ``Parsed`` item's verdict, on the emitting thread.
    """

    @property
    def pending(self) -> int: ...

    def judged(self, passed: bool) -> None: ...


def deduplicate(
    identity: Callable[[Any], Hashable | None],
    window: SeenWindow,
    *,
    marks: RecoveryMarks | None = None,
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Drop each ``Parsed`` item whose identity ``window`` has already seen.

    * a :class:`~rxtweet.events.StreamEvent` (anything not ``Parsed``) passes;
    * a ``Parsed`` item whose ``identity(item.value)`` is ``None`` passes (a system message
      such as an ``operational-disconnect`` has no identity and is never a duplicate);
    * a ``Parsed`` item whose key ``window.seen(key)`` reports as seen is dropped; the
      first one with that key passes (and is recorded by ``seen``).

    Order is kept: nothing is buffered or reordered, an item passes on the call that
    brought it. The window is shared by every subscription of the result: subscribe it
    once (share the result, as :class:`~rxtweet.recovery.dedup.Deduplicated` does), or a
    second subscriber would find every message already seen.

    .. marble::
        :alt: deduplicate

        items:   --P(a)--Connected--P(b)--P(a)--KeepAlive--P(c)--P(b)--|
        [                 deduplicate(identity, window)                 ]
        result:  --P(a)--Connected--P(b)--------KeepAlive--P(c)--------|

    Args:
        identity: the key of a message (``Hashable``), or ``None`` for one that must always
            pass; e.g. :func:`rxtweet.v2.identity.identity_for`. Called once per
            ``Parsed`` item; an exception it raises travels as reactivex routes an
            ``on_next`` failure (the stream ends with it): it should not raise.
        window: where keys are remembered (``seen(key) -> bool``).
        marks: while ``marks.pending``, ``marks.judged(passed)`` is called with each
            ``Parsed`` item's verdict (``True``: it passed, ``False``: a duplicate,
            dropped), on the emitting thread, just before the item goes on (or is
            dropped). :class:`~rxtweet.recovery.dedup.Deduplicated` uses it to take the
            thread's "came through a recovery" mark and count the passing ones.

    Threads: everything runs on the thread that emits the item; the window is not locked
    here, so the source must emit one item at a time (a
    :class:`~rxtweet.connection.Connection` or a
    :class:`~rxtweet.partitions.MergedConnection` does). Errors and completion pass
    through; disposal disposes the source subscription (nothing else is held).

    >>> import reactivex
    >>> from reactivex import operators as ops
    >>> from rxtweet.events import KeepAlive
    >>> from rxtweet.parse import Parsed
    >>> class Window:
    ...     def __init__(self): self.keys = set()
    ...     def seen(self, key):
    ...         if key in self.keys: return True
    ...         self.keys.add(key)
    ...         return False
    >>> items = reactivex.of(Parsed(1, b"1"), KeepAlive(), Parsed(1, b"1"), Parsed(2, b"2"))
    >>> out = items.pipe(deduplicate(lambda n: n, Window()), ops.to_list()).run()
    >>> [item.value if type(item) is Parsed else type(item).__name__ for item in out]
    [1, 'KeepAlive', 2]
    """
    # Imported here: rxtweet.parse imports this package (for pass_through).
    from ..parse import Parsed

    seen = window.seen

    def on_next_for(observer: abc.ObserverBase[Any]) -> Callable[[Any], None]:
        emit = observer.on_next

        if marks is None:

            def on_next(item: Any) -> None:
                if type(item) is Parsed:
                    key = identity(item.value)
                    if key is not None and seen(key):
                        return
                emit(item)

            return on_next

        recovery = marks

        def on_next_marked(item: Any) -> None:
            if type(item) is Parsed:
                key = identity(item.value)
                if key is not None and seen(key):
                    if recovery.pending:
                        recovery.judged(False)
                    return
                if recovery.pending:
                    recovery.judged(True)
            emit(item)

        return on_next_marked

    return pass_through(on_next_for)
