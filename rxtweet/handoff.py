"""A bounded hand-off between a producer thread and a consumer, with an overflow policy.

One implementation of the overflow policies for every place where items cross from the
reader thread to someone slower: :func:`rxtweet.aio.iterate` (to an asyncio loop) and
:func:`rxtweet.operators.observe_on_bounded` (to a scheduler). Neither grows without bound:
when ``capacity`` items wait, the policy decides.

==================  ======================================================================
``overflow``        when ``capacity`` items are waiting and another arrives
==================  ======================================================================
``"block"``         the producer waits until there is room (or the hand-off is closed):
                    the reader stops reading, the socket's buffers fill, and the pressure
                    reaches the server through TCP. Nothing is lost.
``"drop_oldest"``   the oldest waiting item is dropped and the new one queued.
``"drop_newest"``   the new item is dropped.
``"latest"``        only the newest item waits (``capacity`` is 1 whatever is passed): a
                    consumer that wants the current state, not the history.
``"error"``         :class:`~rxtweet.errors.Overflow` is raised to the producer, which
                    ends the stream with it.
==================  ======================================================================

Drops are never silent: :attr:`Handoff.dropped` counts them, ``on_overflow(dropped_total)``
is called on the producer thread at each drop, and a *report* (a WARNING with the count, and
``on_report(dropped_since_last_report, dropped_total)``) is made at most once per second
while drops go on; :meth:`Handoff.report` makes the last one (say, at the end) at once.

Termination (``on_error``/``on_completed`` of the source) is kept apart from the items and is
never dropped or bounded: the consumer sees it after every queued item (:meth:`Handoff.pop`
returns :data:`EMPTY` and :attr:`Handoff.terminal` is set). An item offered after the end
(a source that goes on after ``"error"`` refused an item, before its disposal reaches it) is
refused: the consumer never sees an item that came after the end.

A ``"block"`` producer never waits for a consumer that cannot come: the optional ``stuck()``
is asked before it waits and every :data:`STUCK_CHECK_INTERVAL` while it waits, and the
exception it returns (the loop is closed; the producer runs on the consumer's only thread)
is raised to the producer instead of waiting forever.

Two ways to know when the consumer needs waking:

* :meth:`~Handoff.put` / :meth:`~Handoff.finish` answer "the queue was empty": right for a
  consumer that sleeps whenever it finds the queue empty and tolerates a spare wake-up (an
  ``asyncio.Event``).
* :meth:`~Handoff.offer` / :meth:`~Handoff.end` with :meth:`~Handoff.poll` answer "the
  consumer is *parked*": it parks when :meth:`poll` finds nothing (nor an untold end), and
  the one ``offer``/``end`` that finds it parked returns True, exactly once, so the caller
  starts exactly one consumer (one drain task per backlog:
  :func:`~rxtweet.operators.observe_on_bounded`). A consumer started this way can never run
  twice at once.

Threads: :meth:`~Handoff.put`, :meth:`~Handoff.offer`, :meth:`~Handoff.finish` and
:meth:`~Handoff.end` are the producer's (one thread at a time, as an Rx observer is called);
:meth:`~Handoff.pop` and :meth:`~Handoff.poll` are the consumer's; :meth:`close` and
:meth:`report` may come from any thread; ``close`` wakes a producer waiting in ``"block"``.
Every operation is O(1) (a ``collections.deque``; RxPY's ``observe_on`` pops from a list's
head, O(n)). :meth:`~Handoff.offer` takes no lock while there is room and the consumer runs
(the lock is taken only to start a parked consumer, when full, and at the end), so producer
and consumer on two cores do not queue behind each other for it item after item.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import Final, Generic, Literal, TypeVar, get_args

from .errors import Overflow

__all__ = ["EMPTY", "Handoff", "OverflowPolicy", "Terminal", "check_overflow"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: What happens when a hand-off is full (see the module docstring).
OverflowPolicy = Literal["block", "drop_oldest", "drop_newest", "latest", "error"]

_POLICIES: Final = frozenset(get_args(OverflowPolicy))

#: The interval between two overflow WARNINGs of one hand-off, in seconds.
WARN_INTERVAL: Final = 1.0

#: How often a producer waiting for room (``"block"``) asks ``stuck()``, in seconds.
STUCK_CHECK_INTERVAL: Final = 0.1

#: Whether :meth:`Handoff.offer` may queue without the lock when there is room: its
#: correctness rests on the GIL (one bytecode at a time, in order). A free-threaded build
#: running without the GIL takes the lock for every item, as :meth:`Handoff.put` does.
_LOCK_FREE_OFFER: Final = bool(getattr(sys, "_is_gil_enabled", lambda: True)())


class _Empty:
    __slots__ = ()

    def __repr__(self) -> str:
        return "EMPTY"


#: What :meth:`Handoff.pop` returns when no item waits.
EMPTY: Final = _Empty()


class Terminal:
    """How the source ended: ``error`` is ``None`` for ``on_completed``."""

    __slots__ = ("error",)

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Terminal(error={self.error!r})"


def check_overflow(capacity: object, overflow: object) -> tuple[int, OverflowPolicy]:
    """Validate a ``capacity``/``overflow`` pair; returns them (``"latest"``: capacity 1).

    >>> check_overflow(10, "drop_oldest")
    (10, 'drop_oldest')
    >>> check_overflow(0, "block")
    Traceback (most recent call last):
        ...
    ValueError: capacity must be a positive int, not 0
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be a positive int, not {capacity!r}")
    if overflow not in _POLICIES:
        allowed = ", ".join(repr(p) for p in sorted(_POLICIES))
        raise ValueError(f"overflow must be one of {allowed}, not {overflow!r}")
    policy: OverflowPolicy = overflow  # type: ignore[assignment]
    return (1 if policy == "latest" else capacity), policy


class Handoff(Generic[_T]):
    """A FIFO of at most ``capacity`` items between one producer and one consumer.

    Args:
        capacity: the most items waiting at once (positive).
        overflow: the policy when full (see the module docstring).
        on_overflow: called with the total dropped so far, on the producer thread, at each
            drop. An exception it raises goes to the producer (and ends its stream).
        on_report: called with ``(dropped since the last report, total dropped)`` at each
            report: at most once per second while drops go on (on the producer thread,
            with the WARNING), and by :meth:`report` (on its caller's thread). An exception
            it raises goes to that caller.
        name: how the WARNING names this hand-off (``"aio.iterate"``, say).
        stuck: ``"block"`` only: asked (on the producer thread, lock held: keep it short)
            before the producer waits for room and every :data:`STUCK_CHECK_INTERVAL` while
            it waits; an exception when no consumer can ever make room, which the producer
            gets raised instead of waiting (the queue stays as it is), ``None`` to wait.

    >>> handoff = Handoff(2, "drop_oldest")
    >>> [handoff.put(x) for x in "abc"]
    [True, False, False]
    >>> handoff.pop(), handoff.pop(), handoff.pop(), handoff.dropped
    ('b', 'c', EMPTY, 1)
    """

    def __init__(
        self,
        capacity: int,
        overflow: OverflowPolicy = "block",
        *,
        on_overflow: Callable[[int], None] | None = None,
        on_report: Callable[[int, int], None] | None = None,
        name: str = "hand-off",
        stuck: Callable[[], Exception | None] | None = None,
    ) -> None:
        self.capacity, self.overflow = check_overflow(capacity, overflow)
        self.name = name
        self._stuck = stuck
        self._on_overflow = on_overflow
        self._on_report = on_report
        self._queue: deque[_T] = deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # "block": a producer waits here
        self._waiting = False  # a producer is waiting for room
        self._closed = False
        # The consumer found nothing to do (it has not started yet, or poll() came back
        # EMPTY): the next offer()/end() must start it. Invariant: parked => queue empty.
        self._parked = True
        self._told = False  # poll() has returned the terminal
        self._dropped = 0
        self._reported = 0
        self._total = 0
        self._warned_at = -WARN_INTERVAL
        #: How the source ended, once it has (``None`` until then).
        self.terminal: Terminal | None = None

    def __repr__(self) -> str:
        return (
            f"<Handoff {self.name!r} {len(self._queue)}/{self.capacity} {self.overflow} "
            f"dropped={self._dropped}>"
        )

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def dropped(self) -> int:
        """Items dropped by the overflow policy so far."""
        return self._dropped

    @property
    def reported(self) -> int:
        """Drops reported so far (WARNING and ``on_report``); ``dropped - reported`` wait
        for the next report."""
        return self._reported

    @property
    def total(self) -> int:
        """Items offered by the producer so far (delivered, waiting or dropped)."""
        return self._total

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: nothing is queued any more."""
        return self._closed

    # --- producer ------------------------------------------------------------------------

    def put(self, item: _T) -> bool:
        """Queue ``item`` by the policy; True if the queue was empty before it (so a
        consumer that sleeps when it is empty needs waking).

        Raises:
            Overflow: with ``"error"``, when full.
            Exception: with ``"block"``, what ``stuck()`` returned.
        """
        return self._put(item, False)

    def offer(self, item: _T) -> bool:
        """Queue ``item`` by the policy; True if the consumer is parked (see the module
        docstring) and must be started: True at most once per park.

        Raises:
            Overflow: with ``"error"``, when full.
            Exception: with ``"block"``, what ``stuck()`` returned.
        """
        queue = self._queue
        if _LOCK_FREE_OFFER and len(queue) < self.capacity:
            # Room, and nothing to decide: queued without the lock. Taking it for every
            # item made producer and consumer convoy on two cores: a thread that lost the
            # GIL while holding the lock made the other block on the lock and give the GIL
            # back, item after item (~14,000 context switches a 100,000 items, ~3 us an
            # item). Safe because only the producer appends (the queue cannot fill between
            # the test and the append; the consumer only takes) and deque.append is atomic
            # under the GIL; poll() parks before it looks at the queue a last time, so an
            # item queued here while it parks is either found by that look or finds the
            # consumer parked below (tests/test_handoff.py, the lock-free offer's tests).
            if self._closed or self.terminal is not None:
                return False  # nothing reaches the consumer after the end
            self._total += 1
            queue.append(item)
            if self._parked or self._closed:
                return self._queued_unparked()
            return False
        return self._put(item, True)

    def _queued_unparked(self) -> bool:
        """After a lock-free :meth:`offer` that found the consumer parked (it must be
        started) or the hand-off closed meanwhile (what it queued is discarded)."""
        with self._lock:
            if self._closed:
                self._queue.clear()
                return False
            wake = self._parked
            self._parked = False
            return wake

    def _put(self, item: _T, parking: bool) -> bool:
        report: tuple[int, int] | None = None
        with self._lock:
            if self._closed or self.terminal is not None:
                return False  # nothing reaches the consumer after the end
            self._total += 1
            queue = self._queue
            if len(queue) >= self.capacity:
                dropped = self._full_locked(item)
                if dropped < 0:  # closed while waiting for room
                    return False
                if dropped > 0:
                    report = self._claim_report_locked(False)
            else:
                dropped = 0
                queue.append(item)
            if dropped == 0:
                if parking:
                    wake = self._parked
                    self._parked = False
                    return wake
                return len(queue) == 1
        # A drop: the queue was full, so it was not empty and the consumer is not parked.
        if self._on_overflow is not None:
            self._on_overflow(dropped)
        if report is not None:
            self._emit_report(*report)
        return False

    def _full_locked(self, item: _T) -> int:
        """The policy for a full queue, lock held: -1 closed meanwhile, 0 queued (after
        waiting for room), else the new drop total."""
        policy = self.overflow
        queue = self._queue
        if policy == "block":
            stuck = self._stuck
            self._waiting = True
            try:
                while len(queue) >= self.capacity and not self._closed:
                    if stuck is None:
                        self._room.wait()
                        continue
                    error = stuck()
                    if error is not None:
                        raise error
                    self._room.wait(STUCK_CHECK_INTERVAL)
            finally:
                self._waiting = False
            if self._closed:
                return -1
            queue.append(item)
            return 0
        if policy == "error":
            raise Overflow(self.capacity, self._total, name=self.name)
        self._dropped += 1
        if policy != "drop_newest":  # drop_oldest, latest
            queue.popleft()
            queue.append(item)
        return self._dropped

    def finish(self, error: Exception | None = None) -> bool:
        """The source ended (``error`` or completed); True if the queue is empty now (the
        consumer needs waking to see the end). Ignored once closed or already finished."""
        with self._lock:
            if self._closed or self.terminal is not None:
                return False
            self.terminal = Terminal(error)
            return not self._queue

    def end(self, error: Exception | None = None) -> bool:
        """The source ended (``error`` or completed); True if the consumer is parked and
        must be started to see the end (:meth:`poll` returns it after the last item).
        Ignored (False) once closed or already ended."""
        with self._lock:
            if self._closed or self.terminal is not None:
                return False
            self.terminal = Terminal(error)
            wake = self._parked
            self._parked = False
            return wake

    # --- reports -------------------------------------------------------------------------

    def _claim_report_locked(self, force: bool) -> tuple[int, int] | None:
        unreported = self._dropped - self._reported
        if unreported <= 0:
            return None
        now = monotonic()
        if not force and now - self._warned_at < WARN_INTERVAL:
            return None
        self._warned_at = now
        self._reported = self._dropped
        return unreported, self._dropped

    def _emit_report(self, dropped: int, total: int) -> None:
        log.warning(
            "%s: a slow consumer: %d item(s) dropped (%d in all; overflow=%r, capacity %d)",
            self.name,
            dropped,
            total,
            self.overflow,
            self.capacity,
        )
        if self._on_report is not None:
            self._on_report(dropped, total)

    def report(self, *, force: bool = True) -> int:
        """Report the drops not reported yet (WARNING and ``on_report``) now, or, with
        ``force=False``, only if the last report is a second old; returns how many it
        reported (0: none waited, or too soon). Any thread."""
        with self._lock:
            claim = self._claim_report_locked(force)
        if claim is None:
            return 0
        self._emit_report(*claim)
        return claim[0]

    # --- consumer ------------------------------------------------------------------------

    def pop(self) -> _T | _Empty:
        """The oldest waiting item, or :data:`EMPTY` (then check :attr:`terminal`)."""
        with self._lock:
            if not self._queue:
                self._parked = True
                return EMPTY
            item = self._queue.popleft()
            if self._waiting:
                self._room.notify()
            return item

    def poll(self) -> _T | Terminal | _Empty:
        """The oldest waiting item; when none waits, the :class:`Terminal` (once, after the
        last item), else :data:`EMPTY`, and the consumer is parked: the next
        :meth:`offer`/:meth:`end` returns True. After :meth:`close`: :data:`EMPTY`."""
        with self._lock:
            queue = self._queue
            if queue and not self._closed:
                item = queue.popleft()
                if self._waiting:
                    self._room.notify()
                return item
            terminal = self.terminal
            if terminal is not None and not self._told and not self._closed:
                self._told = True
                return terminal
            self._parked = True
            # A last look, parked: offer() queues without the lock, so an item may have come
            # since the look above, from an offer that found the consumer not yet parked.
            if queue and not self._closed:
                self._parked = False
                item = queue.popleft()
                if self._waiting:
                    self._room.notify()
                return item
            return EMPTY

    def close(self) -> None:
        """Discard what waits, refuse what comes, and wake a producer waiting for room.
        Drops not reported yet stay so (:meth:`report` still reports them)."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._room.notify_all()
