"""The exceptions rxtweet raises (and sends through ``on_error``).

Names follow tweepy 4.x (``HTTPException``, ``BadRequest``, ``Unauthorized``, ``Forbidden``,
``NotFound``, ``TooManyRequests``, ``TwitterServerError``) so that ``except`` clauses of
migrating code keep working. Everything derives from :class:`RxTweetException`.

Two families matter to the reconnect policy:

* :class:`HTTPException` — the server answered with a status other than 200;
* :class:`StreamConnectionError` — the network failed: refused, reset, TLS, a body cut
  before its end, or (:class:`StallError`) nothing received for too long.

Messages never contain credentials: only the status, X's problem ``title``/``detail`` and the
request's method and path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import orjson

from .http import RateLimit

__all__ = [
    "BadRequest",
    "FatalDisconnect",
    "Forbidden",
    "HTTPException",
    "NotFound",
    "RxTweetException",
    "StallError",
    "StreamConnectionError",
    "TooManyRequests",
    "TweepyException",
    "TwitterServerError",
    "Unauthorized",
    "UsageCapExceeded",
    "exception_for_status",
]


class RxTweetException(Exception):
    """Base class of every exception rxtweet raises."""


#: tweepy's name for the base class, so that ``except tweepy.TweepyException`` keeps working
#: after ``import rxtweet as tweepy``.
TweepyException = RxTweetException


class HTTPException(RxTweetException):
    """The server answered with an unexpected HTTP status.

    Attributes:
        status_code: the HTTP status.
        headers: the response headers (a plain dict, lower-case keys).
        body: the parsed JSON body, or ``None`` when it was not JSON.
        text: the body as text (truncated to 2,000 characters).
        title, detail, connection_issue, problem_type: from X's problem document, when present.
        api_errors, api_codes, api_messages: as in tweepy.
        rate_limit: the ``x-rate-limit-*`` headers, when present.
        response: the ``requests.Response`` when one exists (its body is already consumed).
    """

    def __init__(
        self,
        status_code: int,
        *,
        reason: str = "",
        headers: Mapping[str, str] | None = None,
        body: bytes | str | Mapping[str, Any] | None = None,
        request_line: str = "",
        response: Any = None,
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        self.response = response
        self.request_line = request_line
        self.body, self.text = _parse_body(body)
        doc = self.body if isinstance(self.body, dict) else {}
        self.title: str | None = _str_or_none(doc.get("title"))
        self.detail: str | None = _str_or_none(doc.get("detail"))
        self.connection_issue: str | None = _str_or_none(doc.get("connection_issue"))
        self.problem_type: str | None = _str_or_none(doc.get("type"))
        self.api_errors: list[Any] = []
        self.api_codes: list[int] = []
        self.api_messages: list[str] = []
        errors = doc.get("errors")
        if isinstance(errors, list):
            for error in errors:
                self.api_errors.append(error)
                if isinstance(error, dict):
                    if isinstance(error.get("code"), int):
                        self.api_codes.append(error["code"])
                    message = error.get("message") or error.get("detail")
                    if isinstance(message, str):
                        self.api_messages.append(message)
                    # X's per-rule reasons (a 400 or 422 to a rule): a list of strings.
                    details = error.get("details")
                    if isinstance(details, list):
                        self.api_messages.extend(d for d in details if isinstance(d, str))
        self.rate_limit: RateLimit | None = RateLimit.from_headers(self.headers)
        super().__init__(self._message())

    def _message(self) -> str:
        head = f"{self.status_code} {self.reason}".rstrip()
        if self.request_line:
            head = f"{head} ({self.request_line})"
        bits = [b for b in (self.title, self.detail) if b and b != self.reason]
        if self.connection_issue:
            bits.append(f"connection_issue={self.connection_issue}")
        bits.extend(m for m in self.api_messages if m not in bits)
        if not bits and self.body is None and self.text:
            bits.append(self.text[:200])
        return f"{head}: {'; '.join(bits)}" if bits else head

    @classmethod
    def from_response(cls, response: Any, *, request_line: str = "") -> HTTPException:
        """Build the subclass that fits ``response.status_code`` (a ``requests.Response``).

        Reads at most 64 KiB of the body: an error body from X is a small JSON document.
        """
        # A streamed response's body is still on the wire; a plain one was read already.
        content = getattr(response, "_content", False)
        raw: bytes
        if isinstance(content, bytes):
            raw = content
        else:
            try:
                raw = response.raw.read(65536, decode_content=True) if response.raw else b""
            except Exception:  # noqa: BLE001 - the status alone is still worth reporting
                raw = b""
        kind = exception_for_status(response.status_code, problem_type=_problem_type(raw))
        return kind(
            response.status_code,
            reason=response.reason or "",
            headers=dict(response.headers),
            body=raw,
            request_line=request_line,
            response=response,
        )


class BadRequest(HTTPException):
    """HTTP 400."""


class Unauthorized(HTTPException):
    """HTTP 401: bad or missing credentials (or, for OAuth 1.0a, a skewed clock)."""


class Forbidden(HTTPException):
    """HTTP 403."""


class NotFound(HTTPException):
    """HTTP 404."""


class TooManyRequests(HTTPException):
    """HTTP 429 (API v2) or 420 (API v1.1 "Enhance your calm")."""


class UsageCapExceeded(TooManyRequests):
    """HTTP 429 with X's ``usage-capped`` problem: the app's Daily or Monthly cap is used up.

    Chosen by :meth:`HTTPException.from_response` and :func:`exception_for_status` when the
    problem ``type`` ends in ``usage-capped``. Retrying cannot help before the period resets,
    so the reconnect policy never retries it (whatever ``fatal_statuses`` says). The message
    names the cap, e.g. ``429 Too Many Requests (GET /2/tweets/search/stream): usage cap
    exceeded (Monthly, Product): ...; retrying cannot help before the period resets``.

    Attributes:
        period: ``"Daily"`` or ``"Monthly"`` (``None`` when X did not say).
        scope: ``"Account"`` or ``"Product"`` (``None`` when X did not say).
    """

    def __init__(self, status_code: int, **kwargs: Any) -> None:
        super().__init__(status_code, **kwargs)
        self.period, self.scope = self._cap()

    def _cap(self) -> tuple[str | None, str | None]:
        doc = self.body if isinstance(self.body, dict) else {}
        return _str_or_none(doc.get("period")), _str_or_none(doc.get("scope"))

    def _message(self) -> str:
        # Runs inside HTTPException.__init__, before period/scope are set: read the body.
        period, scope = self._cap()
        named = ", ".join(bit for bit in (period, scope) if bit)
        cap = f"usage cap exceeded ({named})" if named else "usage cap exceeded"
        head = f"{self.status_code} {self.reason}".rstrip()
        if self.request_line:
            head = f"{head} ({self.request_line})"
        bits = [cap]
        bits.extend(b for b in (self.title, self.detail) if b and b != self.reason)
        bits.append("retrying cannot help before the period resets")
        return f"{head}: {'; '.join(bits)}"


class TwitterServerError(HTTPException):
    """HTTP 5xx."""


_BY_STATUS: dict[int, type[HTTPException]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    420: TooManyRequests,
    429: TooManyRequests,
}


#: The end of X's problem ``type`` URI for a used-up Daily/Monthly cap.
_USAGE_CAPPED = "usage-capped"


def exception_for_status(
    status_code: int, *, problem_type: str | None = None
) -> type[HTTPException]:
    """The :class:`HTTPException` subclass for ``status_code``.

    ``problem_type`` is the ``type`` of X's problem document, when known: a 429 whose type
    ends in ``usage-capped`` is a :class:`UsageCapExceeded`.
    """
    if status_code == 429 and problem_type is not None and problem_type.endswith(_USAGE_CAPPED):
        return UsageCapExceeded
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if 500 <= status_code <= 599:
        return TwitterServerError
    return HTTPException


class StreamConnectionError(RxTweetException):
    """The network failed: connection refused or reset, TLS failure, or a body cut short.

    ``cause`` is the underlying exception (also chained as ``__cause__``).
    """

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class StallError(StreamConnectionError):
    """No complete line (a message or a keep-alive) arrived for ``stall_timeout`` seconds.

    The message reads ``no complete line (message or keep-alive) for 90 s: the stream
    stalled``. The transport also raises it when the response head (status line and
    headers) is not complete within its own deadline, with a ``message`` that says so;
    ``stall_timeout`` is then that deadline.
    """

    def __init__(
        self,
        stall_timeout: float,
        *,
        cause: BaseException | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(
            message
            or f"no complete line (message or keep-alive) for {stall_timeout:g} s: "
            "the stream stalled",
            cause=cause,
        )
        self.stall_timeout = stall_timeout


class FatalDisconnect(RxTweetException):
    """X (API v1.1) sent a disconnect message whose code means reconnecting cannot help.

    Codes 2 (duplicate stream), 6 (token revoked) and 7 (admin logout) by default (see
    ``Stream.fatal_disconnect_codes``): another connection with the same credentials would
    be thrown off, or the credentials no longer work. The stream ends with this error
    instead of reconnecting. Attributes: ``code``, ``reason``, ``stream_name`` and
    ``notice`` (the :class:`~rxtweet.status.DisconnectNotice`).
    """

    def __init__(self, notice: Any) -> None:
        self.notice = notice
        self.code: int | None = notice.code
        self.reason: str | None = notice.reason
        self.stream_name: str | None = notice.stream_name
        super().__init__(
            f"X disconnected the stream: code {self.code} ({notice.meaning}): "
            f"{self.reason or 'no reason given'}; not reconnecting with the same credentials"
        )


_DOWNSTREAM = "_rxtweet_raised_downstream"


def mark_downstream(exception: BaseException) -> None:
    """Mark ``exception`` as raised by code downstream of a connection (an observer, a hook).

    Such an exception travels back up to the reader as ``on_error``; the reconnect policy
    must end the stream with it whatever its type (a hook may itself raise, say, a
    ``TooManyRequests`` from a REST call), never mistake it for a connection failure.
    """
    # An exception type with __slots__ refuses the mark: it cannot be an rxtweet one anyway.
    with contextlib.suppress(AttributeError):
        setattr(exception, _DOWNSTREAM, True)


def raised_downstream(exception: BaseException | None) -> bool:
    """Whether :func:`mark_downstream` marked ``exception``."""
    return exception is not None and getattr(exception, _DOWNSTREAM, False) is True


def _problem_type(raw: bytes) -> str | None:
    """The ``type`` of the problem document in ``raw``, or ``None`` (not JSON, no type)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return _str_or_none(doc.get("type")) if isinstance(doc, dict) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse_body(body: bytes | str | Mapping[str, Any] | None) -> tuple[Any, str]:
    if body is None:
        return None, ""
    if isinstance(body, Mapping):
        return dict(body), orjson.dumps(dict(body)).decode()
    raw = body.encode() if isinstance(body, str) else body
    text = raw[:2000].decode("utf-8", "replace")
    try:
        return orjson.loads(raw), text
    except orjson.JSONDecodeError:
        return None, text
