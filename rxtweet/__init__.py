"""rxtweet: the X (Twitter) streaming APIs as reactive streams, with a tweepy-compatible face."""

from __future__ import annotations

from ._version import __version__
from .errors import (
    BadRequest,
    BlockedInsideHold,
    FatalDisconnect,
    Forbidden,
    HTTPException,
    InvalidRequest,
    InvalidStreamParameter,
    LengthFramingError,
    NotFound,
    RetriesExhausted,
    RulesSyncError,
    RxTweetException,
    StallError,
    StreamAlreadyRunning,
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
from .http import RateLimit, StreamRequest
from .parse import Parsed, ParseStats
from .reconnect import ReconnectPolicy
from .substreams import Substreams
from .transport import RequestsTransport
from .transport_base import Transport, TransportOptions
from .v1 import Status, Stream, V1Stream
from .v2 import RulesSync, StreamingClient, TweetStream
from .v2.models import Media, Place, Poll, Response, StreamResponse, StreamRule, Tweet, User

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
    "ParseStats",
    "Parsed",
    "Place",
    "Poll",
    "RateLimit",
    "ReconnectPolicy",
    "Reconnecting",
    "RequestFailed",
    "RequestsTransport",
    "Response",
    "RetriesExhausted",
    "RulesSync",
    "RulesSyncError",
    "RxTweetException",
    "StallError",
    "Status",
    "Stream",
    "StreamAlreadyRunning",
    "StreamConnectionError",
    "StreamEvent",
    "StreamRequest",
    "StreamResponse",
    "StreamRule",
    "StreamingClient",
    "Substreams",
    "TooManyRequests",
    "Transport",
    "TransportOptions",
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
