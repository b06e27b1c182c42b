"""rxtweet: the X (Twitter) streaming APIs as reactive streams, with a tweepy-compatible face."""

from __future__ import annotations

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
from .reconnect import ReconnectPolicy, RetriesExhausted

__version__ = "0.1.0"

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
    "NotFound",
    "RateLimit",
    "ReconnectPolicy",
    "Reconnecting",
    "RequestFailed",
    "RetriesExhausted",
    "RxTweetException",
    "StallError",
    "StreamConnectionError",
    "StreamEvent",
    "StreamRequest",
    "TooManyRequests",
    "TwitterServerError",
    "Unauthorized",
    "__version__",
]
