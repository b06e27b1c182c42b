"""Moved: the API v2 models are in :mod:`rxtweet.v2.models`, their machinery in
:mod:`rxtweet._model`. This module re-exports them (same objects) for one release.

Pickles made before the move (``rxtweet.models.Tweet``) still load through it.
"""

from __future__ import annotations

from ._model import Field, _Model, _short
from .v2.models import (
    INCLUDE_MODELS,
    Media,
    Place,
    Poll,
    ReferencedTweet,
    Response,
    StreamResponse,
    StreamRule,
    Tweet,
    User,
)

__all__ = [
    "INCLUDE_MODELS",
    "Field",
    "Media",
    "Place",
    "Poll",
    "ReferencedTweet",
    "Response",
    "StreamResponse",
    "StreamRule",
    "Tweet",
    "User",
    "_Model",
    "_short",
]
