"""The activity subscriptions of X's ``/2/activity/subscriptions`` endpoint, in memory.

:class:`ActivitySubscriptionsStore` answers the endpoint's four calls as ``(status, document)``
in the shapes of the OpenAPI components (2.167):

* ``POST /2/activity/subscriptions`` with ``{"event_type", "filter": {"user_id"|"keyword",
  "direction"?}, "tag"?, "webhook_id"?}`` -> 200 ``{"data": {"subscription": S,
  "total_subscriptions_for_instance_id": n}, "meta": {"total_subscriptions": n}}``;
* ``GET`` -> 200 ``{"data": [S, ...], "meta": {"result_count": n}}`` (no ``data`` when empty);
* ``PUT /2/activity/subscriptions/:id`` with ``{"tag"?, "webhook_id"?}`` -> 200
  ``{"data": {"subscription": S, "total_subscriptions": n}}``;
* ``DELETE /2/activity/subscriptions/:id`` -> 200 ``{"data": {"deleted": true}, "meta":
  {"total_subscriptions": n}}``.

``S`` is ``{"subscription_id", "event_type", "filter", "created_at", "updated_at", "tag"?,
"webhook_id"?}``. A body that does not fit the schema gets X's 400 ``invalid-request``; an
unknown id gets 404 with a ``resource-not-found`` problem (the status is this server's
choice: X does not document it).
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from ._http import _now_iso
from .problems import PROBLEMS, _invalid_request

__all__ = ["ACTIVITY_EVENT_TYPES", "ActivitySubscriptionsStore"]

#: The ``event_type`` values ``ActivitySubscriptionCreateRequest`` allows (OpenAPI 2.167).
ACTIVITY_EVENT_TYPES = frozenset(
    {
        "profile.update.bio",
        "profile.update.profile_picture",
        "profile.update.banner_picture",
        "profile.update.screenname",
        "profile.update.geo",
        "profile.update.url",
        "profile.update.verified_badge",
        "profile.update.affiliate_badge",
        "profile.update.handle",
        "news.new",
        "follow.follow",
        "follow.unfollow",
        "spaces.start",
        "spaces.end",
        "chat.received",
        "chat.sent",
        "chat.conversation_join",
        "dm.sent",
        "dm.received",
        "dm.indicate_typing",
        "dm.read",
        "post.create",
        "post.delete",
        "post.mention.create",
        "like.create",
    }
)
_ID_BASE = 1_746_000_000_000_000_000


def _bad(message: str, parameters: Any) -> tuple[int, dict[str, Any]]:
    params = parameters if isinstance(parameters, dict) else {}
    doc: dict[str, Any] = orjson.loads(_invalid_request(message, params))
    return 400, doc


def _filter_ok(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    if set(value) - {"user_id", "keyword", "direction"}:
        return False
    if ("user_id" in value) == ("keyword" in value):
        return False
    if "user_id" in value and not (
        isinstance(value["user_id"], str) and value["user_id"].isdigit()
    ):
        return False
    if "keyword" in value and not (isinstance(value["keyword"], str) and value["keyword"]):
        return False
    return value.get("direction", "inbound") in ("inbound", "outbound")


class ActivitySubscriptionsStore:
    """The subscriptions of one server. Not thread-safe: the server calls it under its lock."""

    def __init__(self) -> None:
        self._subs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(_ID_BASE)

    def __len__(self) -> int:
        return len(self._subs)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """id -> subscription document, a copy."""
        return {sub_id: dict(sub) for sub_id, sub in self._subs.items()}

    def get(self) -> tuple[int, dict[str, Any]]:
        """``GET /2/activity/subscriptions``."""
        doc: dict[str, Any] = {}
        if self._subs:
            doc["data"] = [dict(sub) for sub in self._subs.values()]
        doc["meta"] = {"result_count": len(self._subs)}
        return 200, doc

    def create(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """``POST /2/activity/subscriptions``."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _bad("Request body is not valid JSON", None)
        if (
            not isinstance(doc, dict)
            or set(doc) - {"event_type", "filter", "tag", "webhook_id"}
            or doc.get("event_type") not in ACTIVITY_EVENT_TYPES
            or not _filter_ok(doc.get("filter"))
            or not isinstance(doc.get("tag", ""), str)
            or not isinstance(doc.get("webhook_id", ""), str)
        ):
            return _bad("JSON doesn't match expected schema", doc)
        now = _now_iso()
        sub: dict[str, Any] = {
            "subscription_id": str(next(self._ids)),
            "event_type": doc["event_type"],
            "filter": dict(doc["filter"]),
            "created_at": now,
            "updated_at": now,
        }
        for key in ("tag", "webhook_id"):
            if key in doc:
                sub[key] = doc[key]
        self._subs[sub["subscription_id"]] = sub
        total = len(self._subs)
        return 200, {
            "data": {"subscription": dict(sub), "total_subscriptions_for_instance_id": total},
            "meta": {"total_subscriptions": total},
        }

    def update(self, sub_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """``PUT /2/activity/subscriptions/:id`` (``tag`` and ``webhook_id`` only)."""
        if sub_id not in self._subs:
            return self._not_found(sub_id)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _bad("Request body is not valid JSON", None)
        if (
            not isinstance(doc, dict)
            or not doc
            or set(doc) - {"tag", "webhook_id"}
            or not all(isinstance(v, str) for v in doc.values())
        ):
            return _bad("JSON doesn't match expected schema", doc)
        sub = self._subs[sub_id]
        sub.update(doc)
        sub["updated_at"] = _now_iso()
        return 200, {"data": {"subscription": dict(sub), "total_subscriptions": len(self._subs)}}

    def delete(self, sub_id: str) -> tuple[int, dict[str, Any]]:
        """``DELETE /2/activity/subscriptions/:id``."""
        if self._subs.pop(sub_id, None) is None:
            return self._not_found(sub_id)
        return 200, {"data": {"deleted": True}, "meta": {"total_subscriptions": len(self._subs)}}

    @staticmethod
    def _not_found(sub_id: str) -> tuple[int, dict[str, Any]]:
        return 404, {
            "errors": [
                {
                    "value": sub_id,
                    "detail": f"Could not find subscription with id: [{sub_id}].",
                    "title": "Not Found Error",
                    "resource_type": "subscription",
                    "parameter": "subscription_id",
                    "resource_id": sub_id,
                    "type": PROBLEMS + "resource-not-found",
                }
            ],
            "title": "Not Found Error",
            "detail": f"Could not find subscription with id: [{sub_id}].",
            "type": PROBLEMS + "resource-not-found",
        }
