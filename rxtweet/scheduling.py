"""Where rxtweet waits, under thread names a user can recognise.

reactivex's ``TimeoutScheduler`` runs each timed action on a ``threading.Timer`` named
``Thread-N``: a subscription forgotten while it waits to reconnect leaves such a thread
behind, and nothing tells it apart from anyone else's. :class:`WaitScheduler` is the same
scheduler with its timer threads named ``rxtweet-wait-N``; it is the default for reconnect
waits (:func:`rxtweet.reconnect.reconnecting`).

Every thread rxtweet starts has a name beginning with ``rxtweet-`` (the transport's readers
are ``rxtweet-reader-N``), so :func:`live_threads` lists what of rxtweet is still running —
for instance in a test fixture asserting that nothing was left behind::

    yield
    assert wait_until(lambda: not live_threads()), live_threads()
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Final, TypeVar

from reactivex import abc, typing
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable
from reactivex.scheduler import TimeoutScheduler

__all__ = ["THREAD_PREFIX", "WAIT_THREAD_PREFIX", "WaitScheduler", "live_threads"]

log = logging.getLogger(__name__)

#: The name of every thread rxtweet starts begins with this.
THREAD_PREFIX: Final = "rxtweet-"

#: Names of :class:`WaitScheduler`'s timer threads: this and a number.
WAIT_THREAD_PREFIX: Final = "rxtweet-wait-"

_TState = TypeVar("_TState")

# itertools.count's __next__ is atomic under the GIL: no lock needed for unique numbers.
_numbers = itertools.count(1)


class WaitScheduler(TimeoutScheduler):
    """``TimeoutScheduler`` whose timer threads are named ``rxtweet-wait-N`` (daemon threads).

    Like its base class it is a singleton (``WaitScheduler()`` is
    ``WaitScheduler.singleton()``), starts one ``threading.Timer`` per scheduled action, and
    cancels the timer when the returned disposable is disposed, so a cancelled wait's thread
    ends at once instead of sleeping out its delay.
    """

    def schedule(
        self, action: abc.ScheduledAction[_TState], state: _TState | None = None
    ) -> abc.DisposableBase:
        """Run ``action`` as soon as possible on a new ``rxtweet-wait-N`` thread."""
        return self._start_timer(0.0, action, state)

    def schedule_relative(
        self,
        duetime: typing.RelativeTime,
        action: abc.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        """Run ``action`` after ``duetime`` (seconds or a ``timedelta``) on a new thread."""
        return self._start_timer(max(self.to_seconds(duetime), 0.0), action, state)

    def _start_timer(
        self, seconds: float, action: abc.ScheduledAction[_TState], state: _TState | None
    ) -> abc.DisposableBase:
        sad = SingleAssignmentDisposable()

        def run() -> None:
            try:
                sad.disposable = self.invoke_action(action, state)
            except Exception:
                # Nothing above a timer thread can take it: a subscriber's callback raised
                # inside what the wait set off (say, on the Errored event of a stream that
                # is ending). Logged with its traceback, not left to threading.excepthook.
                log.exception("%s: a scheduled action raised", threading.current_thread().name)

        timer = threading.Timer(seconds, run)
        timer.name = f"{WAIT_THREAD_PREFIX}{next(_numbers)}"
        timer.daemon = True
        timer.start()
        return CompositeDisposable(sad, Disposable(timer.cancel))


def live_threads() -> list[threading.Thread]:
    """The alive threads that rxtweet started (names beginning with ``rxtweet-``).

    Empty once every stream has been disposed and its threads have wound down (a reader
    ends within moments of its disposal; a cancelled reconnect wait at once). A running
    :class:`~rxtweet.testing.FakeStreamServer` is listed too (``rxtweet-fake-server-*``):
    stop it before asserting that nothing is left.
    """
    return [
        thread
        for thread in threading.enumerate()
        if thread.name.startswith(THREAD_PREFIX) and thread.is_alive()
    ]
