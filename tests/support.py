"""Helpers shared by the integration tests (imported as ``support``; pytest puts tests/ on
sys.path)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def reader_threads() -> list[threading.Thread]:
    """The transport's reader threads still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("rxtweet-reader")]


def wait_until(predicate: Callable[[], Any], timeout: float = 3.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())
