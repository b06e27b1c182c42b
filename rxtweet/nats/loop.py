"""A private asyncio event loop on a thread of its own, for asyncio-only clients (nats-py).

The stream's reader thread and the subscriber's threads are not asyncio; the engine's client
is. Each publish or consume subscription runs one :class:`LoopThread`; other threads hand it
coroutines (:meth:`LoopThread.submit`) or callbacks (:meth:`LoopThread.call_soon`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class LoopThread:
    """An event loop running forever on a daemon thread named ``name``.

    Threads: :meth:`submit`, :meth:`call_soon` and :meth:`stop` from any thread. After
    :meth:`stop` the loop cancels what still runs, closes, and :meth:`submit` raises
    ``RuntimeError``.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            tasks = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.close()

    @property
    def on_loop(self) -> bool:
        """Whether the calling thread is the loop's."""
        return threading.current_thread() is self._thread

    def submit(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Run ``coroutine`` on the loop; its result (or exception) in the returned future.

        Raises:
            RuntimeError: the loop is stopped.
        """
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:
            coroutine.close()
            raise

    def call_soon(self, callback: Callable[[], object]) -> bool:
        """Call ``callback`` on the loop; False (and nothing done) once it is stopped."""
        try:
            self.loop.call_soon_threadsafe(callback)
        except RuntimeError:
            return False
        return True

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the loop and wait up to ``timeout`` s for its thread (not from the loop)."""
        self.call_soon(self.loop.stop)
        if not self.on_loop:
            self._thread.join(timeout)
