"""Recovery's arithmetic and per-connection state, without a server (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxtweet.errors import BadRequest, TwitterServerError
from rxtweet.events import Backfilling, DataLost, RecoveryUnavailable, StreamEvent
from rxtweet.http import StreamRequest
from rxtweet.recovery import (
    BACKFILL_REACH,
    FULL_REACH,
    SKEW,
    RecoveryTracker,
    check_mode,
    plan_gap,
)

gaps = st.floats(min_value=0.0, max_value=3 * FULL_REACH, allow_nan=False)


@given(gap=gaps, mode=st.sampled_from(["backfill", "full"]))
def test_every_second_of_a_gap_is_asked_for_or_reported_lost(gap: float, mode: Any) -> None:
    since, now = 1_700_000_000.0, 1_700_000_000.0 + gap
    plan = plan_gap(since=since, now=now, mode=mode)
    assert 1 <= plan.backfill_minutes <= 5
    backfill_from = now - plan.backfill_minutes * 60.0
    covered = [(backfill_from, now)]
    if plan.window is not None:
        covered.append(plan.window)
    if plan.lost is not None:
        covered.append(plan.lost)
    # The union of what is asked for and what is reported lost covers [since, now] whole.
    covered.sort()
    reach = covered[0][0]
    assert reach <= since
    end = covered[0][1]
    for start, stop in covered[1:]:
        assert start <= end + 1e-6, (covered, plan)
        end = max(end, stop)
    assert end >= now - 1e-6
    # Asked for only what the mode reaches; lost only what it cannot.
    if mode == "backfill":
        assert plan.window is None
        assert (plan.lost is not None) == (gap + SKEW > BACKFILL_REACH)
    else:
        assert (plan.window is not None) == (gap + SKEW > BACKFILL_REACH)
        assert (plan.lost is not None) == (gap > FULL_REACH + SKEW)
        if plan.window is not None:
            assert now - plan.window[0] <= FULL_REACH + 1e-6


def test_the_minutes_are_the_gap_rounded_up_with_the_margin() -> None:
    assert plan_gap(since=0.0, now=0.0, mode="backfill").backfill_minutes == 1
    assert plan_gap(since=0.0, now=90.0, mode="backfill").backfill_minutes == 2
    assert plan_gap(since=0.0, now=60.0 - SKEW, mode="backfill").backfill_minutes == 1
    assert plan_gap(since=0.0, now=60.0 - SKEW + 0.1, mode="backfill").backfill_minutes == 2
    assert plan_gap(since=0.0, now=10_000.0, mode="backfill").backfill_minutes == 5


def test_a_seven_minute_gap_loses_two_minutes_with_backfill() -> None:
    plan = plan_gap(since=1000.0, now=1420.0, mode="backfill")
    assert plan.lost == (1000.0, 1120.0 + SKEW)
    assert plan.window is None and plan.backfill_minutes == 5


def test_a_clock_gone_backwards_is_no_gap() -> None:
    plan = plan_gap(since=1000.0, now=900.0, mode="full")
    assert plan.gap_seconds == 0.0 and plan.backfill_minutes == 1 and plan.window is None


def test_the_mode_is_checked() -> None:
    assert check_mode(None) is None and check_mode("full") == "full"
    with pytest.raises(ValueError, match="'backfill' or 'full'"):
        check_mode("everything")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def tracker(mode: Any = "backfill") -> tuple[RecoveryTracker, Clock, list[StreamEvent]]:
    clock, events = Clock(), []
    return RecoveryTracker(mode, clock=clock, emit=events.append), clock, events


REQUEST = StreamRequest("GET", "http://127.0.0.1:9/2/tweets/sample/stream", params={"a": "1"})


def test_the_first_attempt_is_the_users_request_and_later_ones_ask_for_the_gap() -> None:
    track, clock, events = tracker()
    first = track.request_for(REQUEST)
    assert first is REQUEST and events == []
    clock.now += 10
    assert track.request_for(REQUEST) is REQUEST  # nothing received yet: nothing to ask
    track.on_data()
    clock.now += 90
    again = track.request_for(REQUEST)
    assert dict(again.params or {}) == {"a": "1", "backfill_minutes": "2"}
    assert events == [Backfilling(2, 90.0)]
    # That attempt failed (nothing arrived): the next gap still runs from the old item.
    clock.now += 30
    third = track.request_for(REQUEST)
    assert (third.params or {})["backfill_minutes"] == "3"
    # A backfilled (old) item does not move the gap's start back; a newer one moves it on.
    track.on_data(created=clock.now - 1000)
    assert track.last_item == clock.now - 120
    track.on_data(created=clock.now - 2)
    assert track.last_item == clock.now - 2


def test_a_long_gap_with_backfill_reports_the_lost_part() -> None:
    track, clock, events = tracker()
    track.request_for(REQUEST)
    track.on_data()
    since = clock.now
    clock.now += 420
    track.request_for(REQUEST)
    assert not [e for e in events if isinstance(e, DataLost)]  # settled once connected
    clock.now += 3  # the request reached X a moment later: the lost span ends later
    track.on_connected()
    track.on_connected()  # once per attempt
    lost = [e for e in events if isinstance(e, DataLost)]
    assert len(lost) == 1
    assert lost[0].since.timestamp() == since
    assert lost[0].until.timestamp() == since + 123 + SKEW
    assert lost[0].seconds == 123 + SKEW


def test_full_opens_a_window_for_the_older_part() -> None:
    opened: list[tuple[float, float]] = []
    track, clock, events = tracker("full")
    track.open_window = lambda start, end: opened.append((start, end))
    track.request_for(REQUEST)
    track.on_data()
    since = clock.now
    clock.now += 3600
    track.request_for(REQUEST)
    assert opened == []
    track.on_connected()
    assert opened == [(since - SKEW, clock.now - BACKFILL_REACH + SKEW)]
    assert not [e for e in events if isinstance(e, DataLost)]


def test_a_refused_recovery_is_reported_once_and_asked_for_no_more() -> None:
    track, clock, events = tracker()
    track.request_for(REQUEST)
    track.on_data()
    clock.now += 30
    asked = track.request_for(REQUEST)
    error = BadRequest(400, reason="Bad Request", body={"title": "Invalid Request"})
    assert track.refused(error, asked)
    assert not track.refused(error, asked)  # once
    clock.now += 30
    assert "backfill_minutes" not in (track.request_for(REQUEST).params or {})
    reports = [e for e in events if isinstance(e, RecoveryUnavailable)]
    assert len(reports) == 1 and reports[0].status_code == 400
    assert "Enterprise" in reports[0].reason


def test_other_failures_are_not_refusals() -> None:
    track, _, _ = tracker()
    asked = StreamRequest("GET", "http://x/s", params={"backfill_minutes": "2"})
    assert not track.refused(TwitterServerError(503, reason="Service Unavailable"), asked)
    plain = StreamRequest("GET", "http://x/s")
    assert not track.refused(BadRequest(400, reason="Bad Request"), plain)
