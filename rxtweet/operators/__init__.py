"""Reactive operators rxtweet adds to reactivex.

* :func:`retry_when` — resubscribe when a notifier derived from the errors emits (RxJS).
* :func:`share_connection` — RxJS-7-style ``share()``: ref-counted, fresh after the end.
"""

from __future__ import annotations

from .retry_when import retry_when
from .share import SharedConnection, share_connection

__all__ = ["SharedConnection", "retry_when", "share_connection"]
