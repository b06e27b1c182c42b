"""Moved: the API v2 stream parameters and their checks are in :mod:`rxtweet.v2.params`
(:class:`~rxtweet.errors.InvalidStreamParameter` in :mod:`rxtweet.errors`). This module
re-exports them (same objects) for one release.
"""

from __future__ import annotations

from .v2.params import (
    BACKFILL_MINUTES_MAX,
    FIELD_VALUES,
    InvalidStreamParameter,
    check_stream_params,
    stream_time,
    wire_value,
)

__all__ = [
    "BACKFILL_MINUTES_MAX",
    "FIELD_VALUES",
    "InvalidStreamParameter",
    "check_stream_params",
    "stream_time",
    "wire_value",
]
