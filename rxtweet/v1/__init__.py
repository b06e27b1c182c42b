"""API v1.1: :class:`Stream` (tweepy's face and the reactive one), :class:`V1Stream` and the
v1.1 message types.

The package's modules, from the wire up:

* :mod:`~rxtweet.v1.params`: tweepy's ``filter``/``sample`` arguments -> the request, checked;
* :mod:`~rxtweet.v1.oauth`: OAuth 1.0a signing that keeps credentials out of DEBUG logs;
* :mod:`~rxtweet.v1.framing`: ``delimited=length`` framing and the fatal-disconnect guard;
* :mod:`~rxtweet.v1.models`: :class:`Status`, :class:`User`, :class:`Place` and the notices;
* :mod:`~rxtweet.v1.convert`: a decoded message -> its model (:func:`to_v1_message`);
* :mod:`~rxtweet.v1.stream`: :class:`V1Stream`, the substreams of one stream;
* :mod:`~rxtweet.v1.client`: :class:`Stream`.

Everything public is importable from ``rxtweet.v1``; the old module ``rxtweet.status`` re-exports
the models and the conversion.
"""

from __future__ import annotations

from ..errors import FatalDisconnect, LengthFramingError
from ..events import UnknownMessage
from .client import (
    DEFAULT_BASE_URL,
    DEFAULT_FATAL_DISCONNECT_CODES,
    DEFAULT_STALL_TIMEOUT,
    ENDPOINTS,
    Stream,
)
from .convert import (
    NOTICE_TYPES,
    UNKNOWN_STREAK_WARNING,
    _watching_unknown,  # noqa: F401 - the old rxtweet.v1 path (tests)
    is_v1_data,
    to_v1_message,
)
from .framing import (
    MAX_DELIMITED_LENGTH,
    DelimitedStats,
    _end_on_fatal_disconnect,  # noqa: F401 - the old rxtweet.v1 path (tests)
    length_delimited,
)
from .models import (
    DISCONNECT_CODES,
    BoundingBox,
    DeleteNotice,
    DisconnectNotice,
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
from .params import (
    FILTER_LEVELS,
    MAX_BOXES,
    MAX_FOLLOW,
    MAX_PHRASE_BYTES,
    MAX_TRACK,
    filter_params,
    sample_params,
)
from .stream import V1Stream

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_FATAL_DISCONNECT_CODES",
    "DEFAULT_STALL_TIMEOUT",
    "DISCONNECT_CODES",
    "ENDPOINTS",
    "FILTER_LEVELS",
    "MAX_BOXES",
    "MAX_DELIMITED_LENGTH",
    "MAX_FOLLOW",
    "MAX_PHRASE_BYTES",
    "MAX_TRACK",
    "NOTICE_TYPES",
    "UNKNOWN_STREAK_WARNING",
    "BoundingBox",
    "DeleteNotice",
    "DelimitedStats",
    "DisconnectNotice",
    "FatalDisconnect",
    "LengthFramingError",
    "LimitNotice",
    "Notice",
    "Place",
    "ScrubGeoNotice",
    "StallWarning",
    "Status",
    "StatusWithheldNotice",
    "Stream",
    "UnknownMessage",
    "UnknownNotice",
    "User",
    "UserWithheldNotice",
    "V1Message",
    "V1Stream",
    "filter_params",
    "is_v1_data",
    "length_delimited",
    "parse_created_at",
    "sample_params",
    "to_v1_message",
]
