"""X's error bodies, as the fake server sends them.

The RFC 7807 problem documents (``application/problem+json``) X's v2 endpoints answer with, the
v1.1 ``{"errors": [...]}`` body and text answers, and :func:`default_error_body`, which picks the
one X sends for a status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ._http import _reason

__all__ = ["PROBLEMS", "default_error_body"]

#: The prefix of the ``type`` of X's problem documents.
PROBLEMS = "https://api.twitter.com/2/problems/"

_PROBLEM_JSON = "application/problem+json"
_JSON = "application/json"


def _problem(status: int, title: str | None = None, detail: str | None = None) -> bytes:
    phrase = _reason(status)
    doc = {"title": title or phrase, "type": "about:blank", "status": status}
    doc["detail"] = detail or phrase
    return orjson.dumps(doc)


def _invalid_request(message: str, parameters: Mapping[str, Any] | None = None) -> bytes:
    return orjson.dumps(
        {
            "errors": [{"parameters": dict(parameters or {}), "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        }
    )


_TOO_MANY_CONNECTIONS = orjson.dumps(
    {
        "title": "ConnectionException",
        "detail": "This stream is currently at the maximum allowed connection limit.",
        "connection_issue": "TooManyConnections",
        "type": PROBLEMS + "streaming-connection",
    }
)
_NO_RULES = orjson.dumps(
    {
        "title": "ConnectionException",
        "detail": "You must define rules using the POST /2/tweets/search/stream/rules endpoint "
        "before connecting to filtered stream.",
        "connection_issue": "RuleConfigurationIssue",
        "type": PROBLEMS + "streaming-connection",
    }
)
_CLIENT_FORBIDDEN = orjson.dumps(
    {
        "client_id": "10000001",
        "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use "
        "keys and tokens from a Twitter developer App that is attached to a Project. You can "
        "create a project via the developer portal.",
        "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
        "title": "Client Forbidden",
        "required_enrollment": "Appropriate Level of API Access",
        "reason": "client-not-enrolled",
        "type": PROBLEMS + "client-forbidden",
    }
)
_V1_UNAUTHORIZED = orjson.dumps(
    {"errors": [{"code": 32, "message": "Could not authenticate you."}]}
)


def default_error_body(status: int, *, v1: bool = False) -> tuple[bytes, str]:
    """X's body for an error ``status``, and its content type.

    401 ``about:blank`` (v2) or code 32 (v1.1); 400 ``invalid-request``; 403
    ``client-forbidden``; 409 ``RuleConfigurationIssue``; 429 ``TooManyConnections``;
    420 the v1.1 text ``Exceeded connection limit for user``; anything else an RFC 7807
    ``about:blank`` problem with the status phrase as title and detail.
    """
    if status == 401 and v1:
        return _V1_UNAUTHORIZED, _JSON
    if status == 400:
        return _invalid_request("Invalid request"), _PROBLEM_JSON
    if status == 403:
        return _CLIENT_FORBIDDEN, _PROBLEM_JSON
    if status == 409:
        return _NO_RULES, _PROBLEM_JSON
    if status == 420:
        return b"Exceeded connection limit for user", "text/plain; charset=utf-8"
    if status == 429:
        return _TOO_MANY_CONNECTIONS, _PROBLEM_JSON
    return _problem(status), _PROBLEM_JSON
