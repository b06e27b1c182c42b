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
from .http import RateLimit, StreamRequest

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "Forbidden",
    "HTTPException",
    "NotFound",
    "RateLimit",
    "RxTweetException",
    "StallError",
    "StreamConnectionError",
    "StreamRequest",
    "TooManyRequests",
    "TwitterServerError",
    "Unauthorized",
    "__version__",
]
