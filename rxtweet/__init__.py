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
from .models import Media, Place, Poll, Response, StreamResponse, StreamRule, Tweet, User
from .reconnect import ReconnectPolicy, RetriesExhausted
from .status import Status
from .v1 import Stream, V1Stream
from .v2 import StreamingClient, TweetStream

__all__ = [
    "BadRequest",
    "Closed",
    "Connected",
    "ConnectionFailed",
    "Disconnected",
    "Errored",
    "FatalDisconnect",
    "Forbidden",
    "HTTPException",
    "KeepAlive",
    "MalformedMessage",
    "Media",
    "NotFound",
    "Place",
    "Poll",
    "RateLimit",
    "ReconnectPolicy",
    "Reconnecting",
    "RequestFailed",
    "Response",
    "RetriesExhausted",
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
    "User",
    "V1Stream",
    "__version__",
]
