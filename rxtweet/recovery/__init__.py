"""Nothing lost: recovery on reconnect, redundant connections, de-duplication.

Where each piece lives:

* :mod:`rxtweet.recovery.gap`: the gap arithmetic (pure): what a reconnect asks for;
* :mod:`rxtweet.recovery.tracker`: one connection's state (the last item's time, each
  attempt's request, the events that announce a recovery);
* :mod:`rxtweet.recovery.dedup`: the de-duplication window and the
  :class:`~rxtweet.recovery.dedup.Deduplicated` stream source that applies it.

The stream methods take ``recovery=`` (``None``, ``"backfill"``, ``"full"``) and
``redundancy=`` (1 or 2); see docs/reconnect.md for the guarantees and their limits.
"""

from __future__ import annotations

from .dedup import DEFAULT_MAX_ITEMS, DEFAULT_WINDOW, Deduplicated, DedupStats, DedupWindow
from .gap import (
    BACKFILL_REACH,
    FULL_REACH,
    MAX_BACKFILL_MINUTES,
    SKEW,
    GapPlan,
    RecoveryMode,
    check_mode,
    plan_gap,
)
from .tracker import RecoveryTracker, iso_time, with_params

__all__ = [
    "BACKFILL_REACH",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_WINDOW",
    "FULL_REACH",
    "MAX_BACKFILL_MINUTES",
    "SKEW",
    "DedupStats",
    "DedupWindow",
    "Deduplicated",
    "GapPlan",
    "RecoveryMode",
    "RecoveryTracker",
    "check_mode",
    "iso_time",
    "plan_gap",
    "with_params",
]
