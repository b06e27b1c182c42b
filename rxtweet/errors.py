"""The exceptions rxtweet raises (and sends through ``on_error``), and how to describe them.

Names follow tweepy 4.x (``HTTPException``, ``BadRequest``, ``Unauthorized``, ``Forbidden``,
``NotFound``, ``TooManyRequests``, ``TwitterServerError``) so that ``except`` clauses of
migrating code keep working. Everything derives from :class:`RxTweetException`::

    RxTweetException (= TweepyException)
    ├── HTTPException                    the server answered with a status other than 200
    │   ├── BadRequest                   400
    │   ├── Unauthorized                 401
    │   ├── Forbidden                    403
    │   ├── NotFound                     404
    │   ├── TooManyRequests              420 (v1.1), 429
    │   │   └── UsageCapExceeded         429 usage-capped: the Daily/Monthly cap is used up
    │   └── TwitterServerError           5xx
    ├── StreamConnectionError            the network failed (refused, reset, TLS, cut body)
    │   ├── StallError                   no complete line (or no headers) in time
    │   └── LengthFramingError           v1.1 ``delimited=length`` framing broke
    ├── FatalDisconnect                  v1.1 disconnect code that reconnecting cannot help
    ├── RetriesExhausted                 the reconnect policy gave up
    ├── Overflow                         a bounded hand-off was full (overflow="error")
    ├── StreamAlreadyRunning             ``sample()``/``filter()`` on a running stream
    ├── BlockedInsideHold                a blocking wait inside ``with stream.hold():``
    ├── RulesSyncError                   ``sync_rules`` stopped before the rules matched
    ├── InvalidStreamParameter (+ValueError)  a stream parameter X would refuse
    ├── InvalidRequest (+ValueError)     a request that cannot be sent as given
    └── ChunkedEncodingError (+ValueError)    bytes that are not HTTP/1.1 chunked framing

Two families matter to the reconnect policy:

* :class:`HTTPException` — the server answered with a status other than 200;
* :class:`StreamConnectionError` — the network failed: refused, reset, TLS, a body cut
  before its end, or (:class:`StallError`) nothing received for too long.

Both carry ``request`` (the :class:`~rxtweet.http.StreamRequest` that failed, whose repr
redacts credentials) when the transport knows it. ``cause`` is ``__cause__``.

One way to describe a failure: :func:`describe` (events, logs and the CLI),
:func:`network_reason` (the innermost reason of a network exception),
:attr:`HTTPException.problem` (X's problem document as one line) and
:func:`format_problem` (one problem document).

Messages never contain credentials: only the status, X's problem ``title``/``detail`` and the
request's method and path.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from .http import RateLimit, redact_url

if TYPE_CHECKING:
    from .http import StreamRequest
    from .v2.models import StreamRule
    from .v2.rules import RulesSync

__all__ = [
    "BadRequest",
    "BlockedInsideHold",
    "ChunkedEncodingError",
    "FatalDisconnect",
    "Forbidden",
    "HTTPException",
    "InvalidRequest",
    "InvalidStreamParameter",
    "LengthFramingError",
    "NotFound",
    "Overflow",
    "RetriesExhausted",
    "RulesSyncError",
    "RxTweetException",
    "StallError",
    "StreamAlreadyRunning",
    "StreamConnectionError",
    "TooManyRequests",
    "TweepyException",
    "TwitterServerError",
    "Unauthorized",
    "UsageCapExceeded",
    "describe",
    "exception_for_status",
    "format_problem",
    "network_reason",
]


class RxTweetException(Exception):
    """Base class of every exception rxtweet raises."""

    @property
    def cause(self) -> BaseException | None:
        """The underlying exception: the same object as ``__cause__`` (``None`` if none)."""
        return self.__cause__

    @cause.setter
    def cause(self, value: BaseException | None) -> None:
        # Kept settable for subclasses that assign it; it only ever writes __cause__, so
        # the two can no longer disagree.
        if value is not None or self.__cause__ is not None:
            self.__cause__ = value


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
        request: the :class:`~rxtweet.http.StreamRequest` that got this answer, when known
            (its repr redacts credentials).
        problem: X's problem as one line (see :attr:`problem`).
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
        request: StreamRequest | None = None,
    ) -> None:
        self.status_code = status_code
        self.request = request
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
        # Server text goes into log lines and terminals: no control characters, bounded.
        super().__init__(server_text(self._message()))

    def scrub(self, secrets: tuple[str, ...]) -> None:
        """Replace each of ``secrets`` (see :func:`rxtweet.credentials.secrets_of`) in the
        texts this exception shows (its message, ``title``, ``detail``, ``text``, the API
        messages) with ``<redacted>``: a server may echo the request's headers."""
        if not secrets:
            return
        from .credentials import scrub_secrets

        def clean(text: str | None) -> str | None:
            return None if text is None else scrub_secrets(text, secrets)

        self.title, self.detail = clean(self.title), clean(self.detail)
        self.connection_issue = clean(self.connection_issue)
        self.text = scrub_secrets(self.text, secrets) if isinstance(self.text, str) else self.text
        self.api_messages = [scrub_secrets(m, secrets) for m in self.api_messages]
        self.args = (scrub_secrets(str(self.args[0]), secrets), *self.args[1:])

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

    @property
    def problem(self) -> str:
        """X's problem as one line, with the per-rule and per-parameter details of its
        ``errors`` (``""`` when the answer said nothing beyond its status).

        >>> BadRequest(400, reason="Bad Request", body={"title": "Invalid Request",
        ...     "errors": [{"parameters": {"tweet.fields": ["nope"]}, "message": "bad"}]}).problem
        'Invalid Request; tweet.fields=nope: bad'
        """
        bits = [b for b in (self.title, self.detail) if b and b != self.reason]
        if self.connection_issue:
            bits.append(self.connection_issue)
        for error in self.api_errors:
            text = _error_text(error)
            if text and text not in bits:
                bits.append(text)
        bits.extend(m for m in self.api_messages if m not in bits and not any(m in b for b in bits))
        return server_text("; ".join(bits))

    @classmethod
    def from_response(
        cls, response: Any, *, request_line: str = "", request: StreamRequest | None = None
    ) -> HTTPException:
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
            request=request,
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

    ``cause`` is the underlying exception (it *is* ``__cause__``); ``request`` the
    :class:`~rxtweet.http.StreamRequest` that failed, when known (its repr redacts
    credentials).
    """

    def __init__(
        self,
        message: str,
        *,
        cause: BaseException | None = None,
        request: StreamRequest | None = None,
    ) -> None:
        super().__init__(message)
        self.request = request
        if cause is not None:
            self.__cause__ = cause


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
        request: StreamRequest | None = None,
    ) -> None:
        super().__init__(
            message
            or f"no complete line (message or keep-alive) for {stall_timeout:g} s: "
            "the stream stalled",
            cause=cause,
            request=request,
        )
        self.stall_timeout = stall_timeout


class FatalDisconnect(RxTweetException):
    """X (API v1.1) sent a disconnect message whose code means reconnecting cannot help.

    Codes 2 (duplicate stream), 6 (token revoked) and 7 (admin logout) by default (see
    ``Stream.fatal_disconnect_codes``): another connection with the same credentials would
    be thrown off, or the credentials no longer work. The stream ends with this error
    instead of reconnecting. Attributes: ``code``, ``reason``, ``stream_name`` and
    ``notice`` (the :class:`~rxtweet.v1.models.DisconnectNotice`).
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


class LengthFramingError(StreamConnectionError):
    """``delimited=length`` framing broke: a length line that is no length X could send
    (not a decimal number, negative, or beyond :data:`~rxtweet.v1.MAX_DELIMITED_LENGTH`).

    A network-level failure (a :class:`~rxtweet.errors.StreamConnectionError`): the
    connection is dropped and reconnected like one that was cut, never taken for an error of
    the user's code.
    """


class RetriesExhausted(RxTweetException):
    """The reconnect policy gave up: ``max_retries`` reconnects in a row did not help.

    Attributes:
        retries: how many reconnects were made since a connection last delivered data.
        cause: the failure that would have needed one more; also chained as ``__cause__``.
            ``None`` when the server closed the stream cleanly (without sending anything).
    """

    def __init__(self, retries: int, cause: BaseException | None) -> None:
        super().__init__(
            f"gave up reconnecting after {retries} retries; last failure: "
            f"{describe(cause, with_type=True, closed=_CLOSED_UNFED)}"
        )
        self.retries = retries
        self.__cause__ = cause


class Overflow(RxTweetException):
    """A bounded hand-off (:mod:`rxtweet.handoff`) was full with ``overflow="error"``: the
    consumer fell ``capacity`` items behind.

    Attributes:
        capacity: the bound that was reached.
        total: the items offered so far, the one refused included.
        name: which hand-off (``"aio.iterate"``, ``"observe_on_bounded"``...).
    """

    def __init__(self, capacity: int, total: int, *, name: str = "hand-off") -> None:
        super().__init__(
            f"{name}: the consumer is {capacity} item(s) behind (capacity {capacity}, "
            f"overflow='error'); item {total} refused. Use a larger capacity, a faster "
            "consumer, or overflow='block' to slow the stream down instead"
        )
        self.capacity = capacity
        self.total = total
        self.name = name


class StreamAlreadyRunning(RxTweetException):
    """``sample()``/``filter()`` was called while the stream was already running."""


class BlockedInsideHold(RxTweetException):
    """A blocking wait (``.run()``, ``await``) was started inside ``with stream.hold():``.

    The shared connection opens only when the block ends, so the wait could never end:
    instead of hanging, the subscription fails at once with this error (``.run()`` raises
    it). Subscribe inside the block; call ``.run()`` (or await) after it.
    """


class InvalidRequest(RxTweetException, ValueError):
    """A :class:`~rxtweet.http.StreamRequest` that cannot be sent as given.

    A header name or value with a control character (a token file saved with CRLF) or
    leading whitespace, or a malformed URL. The message names the part at fault but never
    quotes a value, which may be a credential; the dependency's own exception (which does
    quote it) is not chained.
    """


class ChunkedEncodingError(RxTweetException, ValueError):
    """The bytes are not valid HTTP/1.1 chunked framing."""


class InvalidStreamParameter(RxTweetException, ValueError):
    """A stream parameter X would refuse or silently ignore; raised before connecting.

    A ``ValueError`` (and an :class:`~rxtweet.errors.RxTweetException`). ``parameter`` is
    tweepy's keyword name (``"tweet_fields"``); ``value`` the offending item.
    """

    def __init__(self, message: str, *, parameter: str, value: object) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value


class RulesSyncError(RxTweetException):
    """:meth:`StreamingClient.sync_rules` stopped before the rules matched; says exactly
    what was applied.

    Attributes:
        plan: the intended :class:`~rxtweet.v2.RulesSync` (``None`` if the current rules
            could not be read).
        added, deleted: rules that were applied before the failure.
        not_added, not_deleted: rules of the plan that were not.
        errors: X's problem documents for the failure (``details`` of invalid rules included).
        cause: the exception of a failed call (HTTP or network), or ``None``.
    """

    def __init__(
        self,
        what: str,
        *,
        plan: RulesSync | None = None,
        added: tuple[StreamRule, ...] = (),
        deleted: tuple[StreamRule, ...] = (),
        not_added: tuple[StreamRule, ...] = (),
        not_deleted: tuple[StreamRule, ...] = (),
        errors: list[dict[str, Any]] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.plan = plan
        self.added = added
        self.deleted = deleted
        self.not_added = not_added
        self.not_deleted = not_deleted
        self.errors: list[dict[str, Any]] = list(errors or [])
        if cause is not None:
            self.__cause__ = cause
        parts = [f"rules sync failed: {what}"]
        if cause is not None:
            parts[0] += f" ({cause})"
        parts.extend(format_problem(e) for e in self.errors)
        if not (added or deleted):
            parts.append("nothing was changed")
        else:
            parts.append(f"applied: {_listing(added, deleted)}")
        if not_added or not_deleted:
            parts.append(f"not applied: {_listing(not_added, not_deleted)}")
        super().__init__("; ".join(parts))


def _listing(added: tuple[StreamRule, ...], deleted: tuple[StreamRule, ...]) -> str:
    bits = [f"add {r.value!r}" for r in added] + [f"delete {r.value!r}" for r in deleted]
    return ", ".join(bits)


# --- describing a failure -------------------------------------------------------------------

_CLOSED = "the server closed the stream"
_CLOSED_UNFED = "the server closed the stream without sending anything"


def describe(cause: BaseException | None, *, with_type: bool = False, closed: str = _CLOSED) -> str:
    """Why a connection ended, in one short line (for events, logs and the CLI).

    ``None`` means a clean close by the server (``closed`` is then the text). By default the
    text is for people (``stalled: nothing received for 21 s``, ``HTTP 503 Service
    Unavailable``, ``connection refused by api.x.com:443``); ``with_type=True`` gives the
    log form ``TypeName: message`` instead. Neither ever shows a credential.

    >>> describe(None)
    'the server closed the stream'
    >>> describe(StallError(21))
    'stalled: nothing received for 21 s'
    >>> describe(TwitterServerError(503, reason="Service Unavailable"))
    'HTTP 503 Service Unavailable'
    >>> describe(TwitterServerError(503, reason="Service Unavailable"), with_type=True)
    'TwitterServerError: 503 Service Unavailable'
    """
    if cause is None:
        return closed
    if with_type:
        return f"{type(cause).__name__}: {cause}"
    if isinstance(cause, StallError):
        return f"stalled: nothing received for {cause.stall_timeout:g} s"
    if isinstance(cause, StreamConnectionError):
        refused = _refused(cause)
        return refused or f"connection lost: {_connection_text(cause)}"
    if isinstance(cause, UsageCapExceeded):
        return _usage_cap_text(cause)
    if isinstance(cause, TooManyRequests):
        issue = f" ({cause.connection_issue})" if cause.connection_issue else ""
        return f"HTTP {cause.status_code} rate limited{issue}"
    if isinstance(cause, HTTPException):
        issue = f" ({cause.connection_issue})" if cause.connection_issue else ""
        return f"HTTP {cause.status_code} {cause.reason}{issue}".rstrip()
    return f"{type(cause).__name__}: {cause}"


def _usage_cap_text(exc: UsageCapExceeded) -> str:
    """``the Monthly usage cap of the Product is used up (HTTP 429 usage-capped)``."""
    period = f"{exc.period} " if exc.period else ""
    scope = f" of the {exc.scope}" if exc.scope else ""
    return f"the {period}usage cap{scope} is used up (HTTP {exc.status_code} usage-capped)"


def network_reason(exc: BaseException) -> str:
    """The innermost reason of a network exception, for messages (``ConnectionRefusedError:
    [Errno 111] Connection refused``).

    Follows ``args[0]`` and ``.reason`` through the wrappers requests and urllib3 add (up to
    six levels) and drops urllib3's ``<HTTPConnection object at 0x...>`` prefix. The text is
    the dependency's: callers that may hold a credential in a URL or header scrub it.

    >>> network_reason(OSError(OSError("Connection refused")))
    'OSError: Connection refused'
    """
    inner: BaseException = exc
    for _ in range(6):
        nested = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        reason = getattr(inner, "reason", None)
        following = reason if isinstance(reason, BaseException) else nested
        if following is None:
            break
        inner = following
    name = type(inner).__name__
    text = str(inner) or name
    if name == "NewConnectionError" and _is_new_connection_error(inner):
        text = text.rpartition("): ")[2] or text  # drop "<HTTPConnection object at 0x...>"
    return text if name in text else f"{name}: {text}"


def _is_new_connection_error(exc: BaseException) -> bool:
    # urllib3 is imported only here: errors stays importable without the HTTP stack loaded.
    import urllib3.exceptions

    return isinstance(exc, urllib3.exceptions.NewConnectionError)


def format_problem(problem: Mapping[str, Any]) -> str:
    """One of X's problem documents as one line: ``title: detail; detail`` (the per-rule
    ``details`` list of an invalid rule included).

    >>> format_problem({"value": "a b", "title": "Invalid Rule", "details": ["too long"]})
    "'a b': Invalid Rule: too long"
    """
    title = problem.get("title") or "rejected"
    details = problem.get("details")
    messages = [str(d) for d in details if d] if isinstance(details, list) else []
    if not messages:
        messages = [str(problem.get("detail") or problem.get("message") or "")]
    messages = [m for m in messages if m]
    for nested in problem.get("errors") or []:
        if isinstance(nested, dict) and nested.get("message"):
            messages.append(str(nested["message"]))
    value = problem.get("value")
    head = f"{value!r}: {title}" if isinstance(value, str) else str(title)
    return f"{head}: {'; '.join(messages)}" if messages else head


def _error_text(error: Any) -> str:
    """One entry of X's ``errors`` list: its message, the parameters or the rule it is
    about, and its ``details`` (X lists each reason a rule is invalid there)."""
    if not isinstance(error, dict):
        return str(error) if error else ""
    about: list[str] = []
    value = error.get("value")
    if isinstance(value, str):
        about.append(f"rule {value!r}")
    parameters = error.get("parameters")
    if isinstance(parameters, dict):
        for name, values in parameters.items():
            shown = ",".join(map(str, values)) if isinstance(values, list) else str(values)
            about.append(f"{name}={shown}")
    message = error.get("message") or error.get("detail")
    details = error.get("details")
    parts = [str(message)] if isinstance(message, str) and message else []
    if isinstance(details, list):
        parts.extend(str(d) for d in details if d)
    if not parts and isinstance(error.get("title"), str):
        parts.append(error["title"])
    for nested in error.get("errors") or []:
        nested_text = _error_text(nested)
        if nested_text:
            parts.append(nested_text)
    head = " ".join(about)
    body = "; ".join(parts)
    return f"{head}: {body}" if head and body else head or body


def _refused(exc: BaseException) -> str | None:
    """``connection refused by HOST:PORT`` when ``exc`` was caused by a refused connection."""
    refused = False
    host: str | None = None
    port: object = None
    for link in _chain(exc):
        if isinstance(link, ConnectionRefusedError) or (
            isinstance(link, OSError) and link.errno == errno.ECONNREFUSED
        ):
            refused = True
        conn = getattr(link, "conn", None) or getattr(link, "pool", None)
        conn_host = getattr(conn, "host", None)
        if host is None and isinstance(conn_host, str):
            host, port = conn_host, getattr(conn, "port", None)
        if "Connection refused" in str(link):
            refused = True
    if not refused:
        return None
    if host is None:
        return "connection refused"
    return f"connection refused by {host}:{port}" if port else f"connection refused by {host}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        link = stack.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        for attr in ("cause", "reason", "__cause__", "__context__"):
            nxt = getattr(link, attr, None)
            if isinstance(nxt, BaseException):
                stack.append(nxt)
        stack.extend(a for a in getattr(link, "args", ()) if isinstance(a, BaseException))


def _connection_text(cause: StreamConnectionError) -> str:
    refused = _refused(cause)
    if refused:
        return refused
    text = str(cause)
    _, sep, reason = text.partition(": ")  # drop "GET http://...: "
    return redact_url(reason if sep else text)


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


#: The longest server-provided text an exception message carries (X's are a few hundred).
SERVER_TEXT_MAX = 1000

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}


def server_text(text: str, limit: int = SERVER_TEXT_MAX) -> str:
    """``text`` from a server made safe for a log line or a terminal: control characters
    (ESC, BEL, CR, LF, C1 …) written as ``\\xNN`` escapes, and at most ``limit`` characters.

    >>> server_text("503 \\x1b]0;pwned\\x07 down")
    '503 \\\\x1b]0;pwned\\\\x07 down'
    >>> server_text("x" * 1005, limit=10)
    'xxxxxxxxxx… (995 more characters)'
    """
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters)"
    return text.translate(_CONTROL)


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
