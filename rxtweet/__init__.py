"""rxtweet: the X (Twitter) streaming APIs as reactive streams, with a tweepy-compatible face."""

from __future__ import annotations

from ._version import __version__
from .errors import (
    BadRequest,
    FatalDisconnect,
    Forbidden,
    HTTPException,
    NotFound,
    RxTweetException,
    StallError,
    StreamConnectionError,
    TooManyRequests,
    TweepyException,
    TwitterServerError,
    Unauthorized,
    UsageCapExceeded,
)
from .events import (
    Closed,
    Connected,
    ConnectionFailed,
    Disconnected,
    Errored,
    KeepAlive,
    MalformedMessage,
    Reconnecting,
    RequestFailed,
    StreamEvent,
    UnknownMessage,
)
from .fields import InvalidStreamParameter
from .http import InvalidRequest, RateLimit, StreamRequest
from .models import Media, Place, Poll, Response, StreamResponse, StreamRule, Tweet, User
from .operators.share import BlockedInsideHold
from .parse import Parsed
from .reconnect import ReconnectPolicy, RetriesExhausted
from .status import Status
from .v1 import LengthFramingError, Stream, V1Stream
from .v2 import RulesSync, RulesSyncError, StreamingClient, TweetStream

__all__ = [
    "BadRequest",
    "BlockedInsideHold",
    "Closed",
    "Connected",
    "ConnectionFailed",
    "Disconnected",
    "Errored",
    "FatalDisconnect",
    "Forbidden",
    "HTTPException",
    "InvalidRequest",
    "InvalidStreamParameter",
    "KeepAlive",
    "LengthFramingError",
    "MalformedMessage",
    "Media",
    "NotFound",
    "Parsed",
    "Place",
    "Poll",
    "RateLimit",
    "ReconnectPolicy",
    "Reconnecting",
    "RequestFailed",
    "Response",
    "RetriesExhausted",
    "RulesSync",
    "RulesSyncError",
    "RxTweetException",
    "StallError",
    "Status",
    "Stream",
    "StreamConnectionError",
    "StreamEvent",
    "StreamRequest",
    "StreamResponse",
    "StreamRule",
    "StreamingClient",
    "TooManyRequests",
    "TweepyException",
    "Tweet",
    "TweetStream",
    "TwitterServerError",
    "Unauthorized",
    "UnknownMessage",
    "UsageCapExceeded",
    "User",
    "V1Stream",
    "__version__",
]
