"""Deprecated path: the API v1.1 message types now live in :mod:`rxtweet.v1.models`, their
conversion in :mod:`rxtweet.v1.convert`. This module re-exports them for one release."""

from __future__ import annotations

# NOTICE_TYPES, _classify and Key are not in __all__ but were importable from here.
from .v1.convert import NOTICE_TYPES, _classify, is_v1_data, to_v1_message  # noqa: F401
from .v1.models import (
    DISCONNECT_CODES,
    BoundingBox,
    DeleteNotice,
    DisconnectNotice,
    Key,  # noqa: F401
    LimitNotice,
    Notice,
    Place,
    ScrubGeoNotice,
    StallWarning,
    Status,
    StatusWithheldNotice,
    UnknownNotice,
    User,
    UserWithheldNotice,
    V1Message,
    parse_created_at,
)

__all__ = [
    "DISCONNECT_CODES",
    "BoundingBox",
    "DeleteNotice",
    "DisconnectNotice",
    "LimitNotice",
    "Notice",
    "Place",
    "ScrubGeoNotice",
    "StallWarning",
    "Status",
    "StatusWithheldNotice",
    "UnknownNotice",
    "User",
    "UserWithheldNotice",
    "V1Message",
    "is_v1_data",
    "parse_created_at",
    "to_v1_message",
]
