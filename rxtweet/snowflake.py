"""Snowflake ids: the creation time every tweet id carries.

X's ids are Snowflakes: the bits above the lowest 22 count milliseconds since
2010-11-04T01:42:54.657Z, so ``(id >> 22) + 1288834974657`` is when the tweet was made,
without ``created_at`` in the fields. Recovery measures gaps with it, de-duplication and
metrics read lag from it, and the fake server mints ids with it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SNOWFLAKE_EPOCH_MS", "snowflake_ms", "snowflake_time"]

#: Twitter's Snowflake epoch (2010-11-04T01:42:54.657Z), in Unix milliseconds.
SNOWFLAKE_EPOCH_MS: Final = 1288834974657


def snowflake_ms(tweet_id: int | str) -> int:
    """When a Snowflake id (a tweet id) was made, in Unix epoch milliseconds.

    X's ids carry their creation time: ``(id >> 22) + 1288834974657``.

    >>> snowflake_ms("1528053368912060423")
    1653151287664
    >>> from datetime import datetime, timezone
    >>> datetime.fromtimestamp(snowflake_ms(1528053368912060423) / 1000, timezone.utc)
    datetime.datetime(2022, 5, 21, 16, 41, 27, 664000, tzinfo=datetime.timezone.utc)

    Raises:
        ValueError: ``tweet_id`` is not a whole number (or a string of one), or is negative.
    """
    if isinstance(tweet_id, bool) or not isinstance(tweet_id, int | str):
        raise ValueError(f"a Snowflake id is an int or a string of digits, not {tweet_id!r}")
    number = int(tweet_id)
    if number < 0:
        raise ValueError(f"a Snowflake id is not negative: {tweet_id!r}")
    return (number >> 22) + SNOWFLAKE_EPOCH_MS


def snowflake_time(tweet_id: int | str) -> float:
    """:func:`snowflake_ms` in Unix seconds (millisecond precision).

    >>> snowflake_time(1445078208190291968)   # created 2021-10-04T17:27:47.744Z
    1633368467.744

    Raises:
        ValueError: as :func:`snowflake_ms`.
        OverflowError: an id too large for a float's seconds (no real id is).
    """
    return snowflake_ms(tweet_id) / 1000
