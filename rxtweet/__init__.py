"""rxtweet: the X (Twitter) streaming APIs as reactive streams, with a tweepy-compatible face."""

from __future__ import annotations

from ._version import __version__
from .errors import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    RxTweetException,
    StallError,
    StreamConnectionError,
    TooManyRequests,
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
)
from .http import RateLimit, StreamRequest
from .models import Media, Place, Poll, Response, StreamResponse, StreamRule, Tweet, User
from .reconnect import ReconnectPolicy, RetriesExhausted
from .v2 import StreamingClient, TweetStream

__all__ = [
    "BadRequest",
    "Closed",
    "Connected",
    "ConnectionFailed",
    "Disconnected",
    "Errored",
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
    "StreamConnectionError",
    "StreamEvent",
    "StreamRequest",
    "StreamResponse",
    "StreamRule",
    "StreamingClient",
    "TooManyRequests",
    "Tweet",
    "TweetStream",
    "TwitterServerError",
    "Unauthorized",
    "User",
    "__version__",
]
