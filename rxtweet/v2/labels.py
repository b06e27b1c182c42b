"""The label stream (``/2/tweets/label/stream``): label events, lazy like
:class:`~rxtweet.v2.models.Tweet`.

A message is ``{"data": {"<kind>": {...}}}`` with kind ``public_tweet_notice``
(``{tweet, event_type, event_at, application, label_title?, details?,
extended_details_url?}``) or ``public_tweet_unviewable`` (``{tweet, event_at,
application}``) (OpenAPI components; reference section 9). Both become a
:class:`LabelEvent` whose ``kind`` is the wire key.

**Unknown kinds** are neither dropped nor fatal: an :class:`UnknownLabelEvent` (kind, its
object, ``raw``: the message's whole ``data``), counted per kind by a
:class:`LabelConverter` (:attr:`LabelStream.unknown_kinds`). Wrong types of known keys
raise ``ValueError`` in the converter: a :class:`~rxtweet.events.MalformedMessage`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, NamedTuple

from reactivex import Observable

from .._model import Model, _fromisoformat
from ..substreams import ItemSource, Substreams
from .compliance import (
    ID_TYPES,
    KindCounter,
    Shape,
    as_object,
    check_shape,
    errors_of_doc,
    nested,
    unknown_kinds_of,
)

__all__ = [
    "LABEL_KINDS",
    "LabelConverter",
    "LabelEvent",
    "LabelResponse",
    "LabelStream",
    "UnknownLabelEvent",
    "is_label_data",
    "to_label_response",
]

log = logging.getLogger(__name__)

_Dict = dict[str, Any]

#: The kinds of label events X documents.
LABEL_KINDS: Final = frozenset({"public_tweet_notice", "public_tweet_unviewable"})

_SHAPE: Final[Shape] = (
    ("tweet", (dict,)),
    ("tweet.id", ID_TYPES),
    ("tweet.author_id", ID_TYPES),
    ("event_type", (str,)),
    ("event_at", (str,)),
    ("application", (str,)),
    ("label_title", (str,)),
    ("details", (str,)),
    ("extended_details_url", (str,)),
)


class LabelEvent(Model):
    """One label event, a read-only lazy view of the object under its kind.

    Attributes:
        kind: ``"public_tweet_notice"`` or ``"public_tweet_unviewable"``.
        data: the event's object, never modified.
        tweet_id, author_id: ``tweet.id`` and ``tweet.author_id`` as ``int``.
        event_type, application, label_title, details, extended_details_url: strings, or
            ``None`` when absent (an unviewable notice has no ``event_type`` or title).
        event_at: tz-aware UTC ``datetime`` (``None`` when absent).

    Equal when of the same class and kind with equal ``data``; unhashable.
    """

    __slots__ = ("_kind",)

    def __init__(self, kind: str, data: _Dict) -> None:
        self.data = data
        self._kind = kind

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def tweet_id(self) -> int | None:
        value = nested(self.data, "tweet", "id")
        return None if value is None else int(value)

    @property
    def author_id(self) -> int | None:
        value = nested(self.data, "tweet", "author_id")
        return None if value is None else int(value)

    @property
    def event_at(self) -> datetime | None:
        value = self.data.get("event_at")
        return None if value is None else _fromisoformat(value)

    @property
    def event_type(self) -> str | None:
        return self._str("event_type")

    @property
    def application(self) -> str | None:
        return self._str("application")

    @property
    def label_title(self) -> str | None:
        return self._str("label_title")

    @property
    def details(self) -> str | None:
        return self._str("details")

    @property
    def extended_details_url(self) -> str | None:
        return self._str("extended_details_url")

    def _str(self, key: str) -> str | None:
        value = self.data.get(key)
        return value if type(value) is str else None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LabelEvent) and type(other) is type(self):
            return bool(self._kind == other._kind and self.data == other.data)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} kind={self._kind} tweet_id={nested(self.data, 'tweet', 'id')}>"
        )


class UnknownLabelEvent(LabelEvent):
    """A label event of a kind this version does not know: kept, not dropped. ``raw`` is
    the message's whole ``data`` object; the attributes read ``data`` as for a known kind
    (``None`` where absent; not type-checked)."""

    __slots__ = ("raw",)

    def __init__(self, kind: str, data: _Dict, raw: _Dict | None = None) -> None:
        super().__init__(kind, data)
        self.raw = {kind: data} if raw is None else raw

    @property
    def event_at(self) -> datetime | None:
        value = self.data.get("event_at")
        return _fromisoformat(value) if type(value) is str else None

    @property
    def tweet_id(self) -> int | None:
        value = nested(self.data, "tweet", "id")
        return int(value) if type(value) in ID_TYPES else None

    @property
    def author_id(self) -> int | None:
        value = nested(self.data, "tweet", "author_id")
        return int(value) if type(value) in ID_TYPES else None


class LabelResponse(NamedTuple):
    """One label stream message: ``label`` (``None`` for a system message with only
    ``errors``) and ``errors`` (raw problem objects, ``[]`` when absent)."""

    label: LabelEvent | None
    errors: list[dict[str, Any]]


def _convert(doc: _Dict, count: Callable[[str], None] | None) -> LabelResponse:
    errors = errors_of_doc(doc)
    data = doc.get("data")
    if data is None:
        return LabelResponse(None, errors)
    data = as_object(data, "data")
    if not data:
        raise ValueError("'data' is an empty object, not a label event")
    kind = next((key for key in data if key in LABEL_KINDS), None)
    if kind is None:
        kind = next(iter(data))
        if count is not None:
            count(kind)
        log.debug("unknown label event kind %r", kind)
        return LabelResponse(
            UnknownLabelEvent(kind, as_object(data[kind], f"data.{kind}"), data), errors
        )
    event = as_object(data[kind], f"data.{kind}")
    check_shape(event, kind, _SHAPE)
    return LabelResponse(LabelEvent(kind, event), errors)


def to_label_response(doc: _Dict) -> LabelResponse:
    """A decoded label stream message -> :class:`LabelResponse` (nothing counted; a
    :class:`LabelConverter` also counts unknown kinds).

    Raises:
        ValueError: ``data`` is not an object or is empty, a known key of the event has the
            wrong type, or ``errors`` is not a list of objects.
    """
    return _convert(doc, None)


class LabelConverter:
    """:func:`to_label_response` that counts the unknown kinds it meets (one per stream,
    shared by its connections; :attr:`LabelStream.unknown_kinds` reads it)."""

    __slots__ = ("unknown_kinds",)

    def __init__(self) -> None:
        self.unknown_kinds = KindCounter()

    def __call__(self, doc: _Dict) -> LabelResponse:
        return _convert(doc, self.unknown_kinds.add)

    def __repr__(self) -> str:
        return f"<LabelConverter unknown_kinds={dict(self.unknown_kinds.snapshot())!r}>"


def is_label_data(response: LabelResponse) -> bool:
    """Whether a message is real data (a label event), which restarts the reconnect backoff."""
    return response.label is not None


class LabelStream(Substreams[LabelResponse]):
    """The observables of the label stream (see :class:`~rxtweet.substreams.Substreams` for
    ``items``, ``lines``, ``events``, ``stats`` and :meth:`hold`).

    Attributes:
        responses: every :class:`LabelResponse`.
        labels: the :class:`LabelEvent` of each message that has one (unknown kinds too).
        errors: the non-empty ``errors`` list of each message.
    """

    def __init__(self, connection: ItemSource[LabelResponse]) -> None:
        super().__init__(connection)
        self.responses: Observable[LabelResponse] = self.select(_identity)
        self.labels: Observable[LabelEvent] = self.select(_label)
        self.errors: Observable[list[dict[str, Any]]] = self.select(_errors)

    @property
    def unknown_kinds(self) -> Counter[str]:
        """Events of unknown kinds received so far, per kind (a copy), when the connection
        parses with a :class:`LabelConverter`; empty otherwise."""
        return unknown_kinds_of(self.connection)


def _identity(response: LabelResponse) -> LabelResponse:
    return response


def _label(response: LabelResponse) -> LabelEvent | None:
    return response.label


def _errors(response: LabelResponse) -> list[dict[str, Any]] | None:
    return response.errors or None
