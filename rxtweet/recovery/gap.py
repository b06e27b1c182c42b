"""The gap arithmetic: what a reconnect asks for, given how long the stream was away.

A pure function of three numbers (the time of the last item received, the time of the
reconnect, the mode), so that every rule below is tested without a clock or a server.

X offers two ways to get missed items back (``recovery-and-redundancy.mdx``):

* ``backfill_minutes`` (0-5) on the reconnecting request: X first re-sends what it published
  in the last N minutes, then goes live. Minute-grained and not de-duplicated: down 90 s,
  ask for 2 minutes, and 30 s of duplicates arrive.
* ``start_time``/``end_time`` on a second, *recovery* connection (Enterprise): X streams
  that window, up to 24 hours back, then closes.

The plan for a gap of ``g`` seconds (``g`` from the last item received to the reconnect;
keep-alives do not count), with ``m = SKEW`` seconds of margin for clocks that disagree:

==============  ==================  ==========================  ===========================
mode            ``g <= 300 - m``    ``300 - m < g <= 24 h``     ``g > 24 h``
==============  ==================  ==========================  ===========================
``"backfill"``  ceil((g + m) / 60)  5 minutes; the older part   5 minutes; the older part
                minutes             (+ m) is lost               (+ m) is lost
                                    (``DataLost``)              (``DataLost``)
``"full"``      ceil((g + m) / 60)  5 minutes, and a window     5 minutes, a window of the
                minutes             from the last item (- m)    24 hours before that, the
                                    to 5 minutes ago (+ m)      rest lost
==============  ==================  ==========================  ===========================

>>> plan_gap(since=1000.0, now=1090.0, mode="backfill").backfill_minutes
2
>>> plan = plan_gap(since=0.0, now=420.0, mode="backfill")   # a 7-minute gap
>>> plan.backfill_minutes, plan.lost, plan.window
(5, (0.0, 125.0), None)
>>> plan_gap(since=0.0, now=420.0, mode="full").window
(-5.0, 125.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

__all__ = [
    "BACKFILL_REACH",
    "FULL_REACH",
    "MAX_BACKFILL_MINUTES",
    "SKEW",
    "GapPlan",
    "RecoveryMode",
    "check_mode",
    "plan_gap",
]

#: ``"backfill"``: ask for the gap back with ``backfill_minutes`` (up to 5 minutes).
#: ``"full"``: that, and for longer gaps (up to 24 hours) a ``start_time``/``end_time``
#: recovery connection beside the live one (Enterprise).
RecoveryMode = Literal["backfill", "full"]

#: The most ``backfill_minutes`` X takes.
MAX_BACKFILL_MINUTES: Final = 5
#: How far back ``backfill_minutes`` reaches, in seconds.
BACKFILL_REACH: Final = MAX_BACKFILL_MINUTES * 60.0
#: How far back a ``start_time``/``end_time`` recovery reaches, in seconds.
FULL_REACH: Final = 24 * 3600.0
#: Seconds of margin added to every gap: the last item's arrival time is the client's clock,
#: X's windows are X's, and the request reaches X a moment after the client planned it; a
#: few seconds more cost only duplicates, which are dropped. A span reported lost is widened
#: by it too (it may include a few seconds that did arrive: never a silent loss).
SKEW: Final = 5.0


@dataclass(frozen=True, slots=True)
class GapPlan:
    """What one reconnect asks for.

    Attributes:
        gap_seconds: from the last item received to the reconnect.
        backfill_minutes: for the reconnecting request (0: none).
        window: ``(start, end)`` epoch seconds for a recovery connection, or ``None``.
        lost: ``(since, until)`` epoch seconds that nothing recovers, or ``None``.
    """

    gap_seconds: float
    backfill_minutes: int
    window: tuple[float, float] | None = None
    lost: tuple[float, float] | None = None


def check_mode(mode: object) -> RecoveryMode | None:
    """``mode`` if it is a recovery mode or ``None``; else ``ValueError`` naming them."""
    if mode is None or mode in get_args(RecoveryMode):
        return mode  # type: ignore[return-value]
    raise ValueError(f"recovery must be None, 'backfill' or 'full', not {mode!r}")


def plan_gap(*, since: float, now: float, mode: RecoveryMode) -> GapPlan:
    """The plan for a reconnect at ``now`` after the last item at ``since`` (epoch seconds).

    A clock that went backwards (``now < since``) counts as no gap; the margin still asks for
    the last minute.
    """
    gap = max(0.0, now - since)
    reach = gap + SKEW
    if reach <= BACKFILL_REACH:
        return GapPlan(gap, max(1, math.ceil(reach / 60.0)))
    backfill_from = now - BACKFILL_REACH  # what the 5 minutes of backfill cover
    if mode == "backfill":
        return GapPlan(gap, MAX_BACKFILL_MINUTES, lost=(since, backfill_from + SKEW))
    oldest = now - FULL_REACH
    window = (max(since - SKEW, oldest), backfill_from + SKEW)
    lost = (since, oldest) if since < oldest else None
    return GapPlan(gap, MAX_BACKFILL_MINUTES, window=window, lost=lost)
