"""Reactive operators rxtweet adds to reactivex.

Every operator is a factory returning ``Callable[[Observable[A]], Observable[B]]`` (use it in
``.pipe(...)``).

* :func:`retry_when` — resubscribe when a notifier derived from the errors emits (RxJS).
* :func:`share_connection` — RxJS-7-style ``share()``: ref-counted, fresh after the end.
* :func:`pass_through` — the helper behind the operators that only transform ``on_next``.
* :func:`observe_on_bounded` — ``observe_on`` with a bound and an overflow policy.
* :func:`deduplicate` — drop the messages whose identity a window has seen.
"""

from __future__ import annotations

from .deduplicate import RecoveryMarks, SeenWindow, deduplicate
from .observe_on_bounded import observe_on_bounded
from .pass_through import pass_through
from .retry_when import retry_when
from .share import SharedConnection, share_connection

__all__ = [
    "RecoveryMarks",
    "SeenWindow",
    "SharedConnection",
    "deduplicate",
    "observe_on_bounded",
    "pass_through",
    "retry_when",
    "share_connection",
]
