"""The activity stream (``/2/activity/stream``) and its subscriptions
(``/2/activity/subscriptions``).

A message is ``{"data": {"event_uuid", "event_type", "filter": {"user_id" | "keyword",
"direction"?}, "tag"?, "payload", "includes"?}}`` (OpenAPI components; reference section 9).
``payload`` varies with ``event_type`` (a profile ``{before, after}``, a post, a like, a
follow ``{source, target}``, news ...), so every event is one generic, lazy
:class:`ActivityEvent` with ``payload`` as the raw dict: there is no "unknown kind" to count
here, and a new ``event_type`` arrives like any other. The converter checks the types of the
known keys (``event_uuid``/``event_type``/``tag`` strings, ``filter``/``payload``/``includes``
objects) and raises ``ValueError`` otherwise: a :class:`~rxtweet.events.MalformedMessage`.

:class:`ActivitySubscriptionsMixin` gives :class:`~rxtweet.v2.StreamingClient` the
subscription calls, on :class:`~rxtweet.v2.rest.RestCalls` like the rules methods and with
the same return conventions (``return_type``: :class:`~rxtweet.v2.models.Response`,
``dict`` or ``requests.Response``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import requests
from reactivex import Observable

from .._model import Model
from ..http import redact_url
from ..substreams import ItemSource, Substreams
from .compliance import Shape, as_object, check_shape, errors_of_doc
from .convert import process_includes, to_response
from .rest import RestCalls, json_of

__all__ = [
    "ActivityEvent",
    "ActivityResponse",
    "ActivityStream",
    "ActivitySubscriptionsMixin",
    "is_activity_data",
    "to_activity_response",
]

log = logging.getLogger(__name__)

_Dict = dict[str, Any]

_SHAPE: Final[Shape] = (
    ("event_uuid", (str,)),
    ("event_type", (str,)),
    ("filter", (dict,)),
    ("tag", (str,)),
    ("payload", (dict,)),
    ("includes", (dict,)),
)


class ActivityEvent(Model):
    """One activity event, a read-only lazy view of the message's ``data``.

    Attributes:
        event_uuid: the event's id (a string); identifies it (equality, hash).
        event_type: e.g. ``"profile.update.bio"``, ``"follow.follow"``.
        filter: the subscription filter it matched (``{"user_id"}`` or ``{"keyword"}``,
            maybe ``"direction"``), raw.
        tag: the subscription's tag, or ``None``.
        payload: the event's content (raw dict; its shape depends on ``event_type``).
        includes: ``data.includes`` in tweepy's shape (models for ``users``, ``tweets``...),
            ``{}`` when absent.

    Absent keys read as ``None`` (``payload``: ``{}``).
    """

    __slots__ = ()

    @property
    def event_uuid(self) -> str | None:
        value: str | None = self.data.get("event_uuid")
        return value

    @property
    def event_type(self) -> str | None:
        value: str | None = self.data.get("event_type")
        return value

    @property
    def filter(self) -> _Dict | None:
        value: _Dict | None = self.data.get("filter")
        return value

    @property
    def tag(self) -> str | None:
        value: str | None = self.data.get("tag")
        return value

    @property
    def payload(self) -> _Dict:
        value = self.data.get("payload")
        return {} if value is None else value

    @property
    def includes(self) -> _Dict:
        value = self.data.get("includes")
        return {} if value is None else process_includes(value)

    def _key(self) -> Any:
        return self.data.get("event_uuid")

    def __repr__(self) -> str:
        d = self.data
        return f"<ActivityEvent event_type={d.get('event_type')} event_uuid={d.get('event_uuid')}>"


class ActivityResponse(NamedTuple):
    """One activity stream message: ``activity`` (``None`` for a system message with only
    ``errors``) and ``errors`` (raw problem objects, ``[]`` when absent)."""

    activity: ActivityEvent | None
    errors: list[dict[str, Any]]


def to_activity_response(doc: _Dict) -> ActivityResponse:
    """A decoded activity stream message -> :class:`ActivityResponse`.

    Raises:
        ValueError: ``data`` is not an object, a known key of it has the wrong type, or
            ``errors`` is not a list of objects.
    """
    errors = errors_of_doc(doc)
    data = doc.get("data")
    if data is None:
        return ActivityResponse(None, errors)
    data = as_object(data, "data")
    check_shape(data, "data", _SHAPE)
    return ActivityResponse(ActivityEvent(data), errors)


def is_activity_data(response: ActivityResponse) -> bool:
    """Whether a message is real data (an event), which restarts the reconnect backoff."""
    return response.activity is not None


class ActivityStream(Substreams[ActivityResponse]):
    """The observables of the activity stream (see :class:`~rxtweet.substreams.Substreams`
    for ``items``, ``lines``, ``events``, ``stats`` and :meth:`hold`).

    Attributes:
        responses: every :class:`ActivityResponse`.
        activities: the :class:`ActivityEvent` of each message that has one.
        errors: the non-empty ``errors`` list of each message.
    """

    def __init__(self, connection: ItemSource[ActivityResponse]) -> None:
        super().__init__(connection)
        self.responses: Observable[ActivityResponse] = self.select(_identity)
        self.activities: Observable[ActivityEvent] = self.select(_activity)
        self.errors: Observable[list[dict[str, Any]]] = self.select(_errors)


def _identity(response: ActivityResponse) -> ActivityResponse:
    return response


def _activity(response: ActivityResponse) -> ActivityEvent | None:
    return response.activity


def _errors(response: ActivityResponse) -> list[dict[str, Any]] | None:
    return response.errors or None


# -- subscriptions -------------------------------------------------------------------------

#: A subscription id goes into the URL path: only these characters (no "/", "..", "?").
_SUBSCRIPTION_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FILTER_KEYS: Final = frozenset({"user_id", "keyword", "direction"})


class ActivitySubscriptionsMixin(RestCalls):
    """The activity subscription methods of :class:`~rxtweet.v2.StreamingClient`, over
    ``/2/activity/subscriptions[/:id]``. The class it is mixed into provides ``base_url``
    and ``return_type`` besides what :class:`~rxtweet.v2.rest.RestCalls` needs.

    Each returns, as the rules methods do, a :class:`~rxtweet.v2.models.Response`
    (``data``: the subscription object(s) as raw dicts, ``errors``, ``meta``), the JSON
    (``return_type=dict``) or the ``requests.Response``; a non-2xx answer raises the typed
    :class:`~rxtweet.errors.HTTPException`. Arguments are checked before any call
    (``ValueError``/``TypeError``).
    """

    base_url: str
    return_type: type

    def add_activity_subscription(
        self,
        event_type: str,
        filter: Mapping[str, Any],
        *,
        tag: str | None = None,
        webhook_id: str | int | None = None,
    ) -> Any:
        """Subscribe to ``event_type`` for ``filter`` (``POST /2/activity/subscriptions``).

        Args:
            event_type: e.g. ``"profile.update.bio"``.
            filter: ``{"user_id": ...}`` or ``{"keyword": ...}``, optionally with
                ``"direction"``; a ``user_id`` given as ``int`` is sent as a string.
            tag: a label X repeats on each event.
            webhook_id: deliver to this webhook rather than only the stream.
        """
        if not isinstance(event_type, str) or not event_type.strip():
            raise ValueError("event_type must be a non-empty string")
        body: dict[str, Any] = {"event_type": event_type, "filter": _filter_body(filter)}
        body.update(_optional_fields(tag, webhook_id))
        return self._subscriptions_request("POST", json=body)

    def get_activity_subscriptions(self) -> Any:
        """The app's activity subscriptions (``GET /2/activity/subscriptions``)."""
        return self._subscriptions_request("GET")

    def update_activity_subscription(
        self,
        id: str | int,
        *,
        tag: str | None = None,
        webhook_id: str | int | None = None,
    ) -> Any:
        """Change a subscription's ``tag`` and/or ``webhook_id`` (what X's update request
        takes; ``PUT /2/activity/subscriptions/:id``). At least one is required."""
        body = _optional_fields(tag, webhook_id)
        if not body:
            raise ValueError("update_activity_subscription: give tag and/or webhook_id")
        return self._subscriptions_request("PUT", _subscription_id(id), json=body)

    def delete_activity_subscription(self, id: str | int) -> Any:
        """Delete a subscription (``DELETE /2/activity/subscriptions/:id``)."""
        return self._subscriptions_request("DELETE", _subscription_id(id))

    def _subscriptions_request(
        self, method: str, subscription_id: str | None = None, *, json: Any = None
    ) -> Any:
        url = f"{self.base_url}/2/activity/subscriptions"
        if subscription_id is not None:
            url = f"{url}/{subscription_id}"
        response = self._call(method, url, json=json)
        if self.return_type is requests.Response:
            return response
        if not response.content:
            # A DELETE may answer 204: nothing to parse.
            return {} if self.return_type is dict else to_response({})
        doc = json_of(response, method)
        if self.return_type is dict:
            return doc
        if not isinstance(doc, dict):
            raise ValueError(f"{method} {redact_url(url)}: the answer is not a JSON object")
        return to_response(doc)


def _subscription_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"a subscription id is a string or an int, not {type(value).__name__}")
    text = str(value)
    if not _SUBSCRIPTION_ID.fullmatch(text):
        raise ValueError(
            "a subscription id is 1-64 letters, digits, '_' or '-' (it goes into the URL path)"
        )
    return text


def _filter_body(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f'filter is a mapping such as {{"user_id": "2244994945"}}, not {type(value).__name__}'
        )
    unknown = sorted(str(k) for k in value if k not in _FILTER_KEYS)
    if unknown:
        raise ValueError(f"filter: unknown key(s) {unknown}; known: {sorted(_FILTER_KEYS)}")
    if ("user_id" in value) == ("keyword" in value):
        raise ValueError("filter needs exactly one of 'user_id' and 'keyword'")
    body = dict(value)
    user_id = body.get("user_id")
    if "user_id" in body:
        if isinstance(user_id, bool) or not isinstance(user_id, str | int) or not str(user_id):
            raise ValueError("filter: 'user_id' is a non-empty string or an int")
        body["user_id"] = str(user_id)
    if "keyword" in body and (not isinstance(body["keyword"], str) or not body["keyword"]):
        raise ValueError("filter: 'keyword' is a non-empty string")
    return body


def _optional_fields(tag: str | None, webhook_id: str | int | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if tag is not None:
        if not isinstance(tag, str):
            raise TypeError(f"tag is a string, not {type(tag).__name__}")
        fields["tag"] = tag
    if webhook_id is not None:
        if isinstance(webhook_id, bool) or not isinstance(webhook_id, str | int):
            raise TypeError(f"webhook_id is a string or an int, not {type(webhook_id).__name__}")
        fields["webhook_id"] = str(webhook_id)
    return fields
