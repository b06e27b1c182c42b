"""REST plumbing of the v2 clients: one call, answered 2xx, or a typed exception.

:class:`RestCalls` is a mixin for a client that holds a ``requests`` session and a bearer
token (today :class:`~rxtweet.v2.StreamingClient`'s rules methods; tomorrow the activity
subscriptions). What it guarantees for every call:

* a non-2xx answer raises the typed :class:`~rxtweet.errors.HTTPException` subclass; with
  ``wait_on_rate_limit`` a 429 is waited out first (until the reset plus a second, at most
  :data:`~rxtweet.reconnect.RATE_LIMIT_RESET_WAIT_MAX` s at a time, each wait logged);
* a reset of a kept-alive connection is retried once (on a fresh connection); any other
  network failure raises :class:`~rxtweet.errors.StreamConnectionError`;
* no message, and no exception chained to it, shows the token or a URL's userinfo.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from http.client import RemoteDisconnected
from typing import Any

import requests
import urllib3

from ..errors import HTTPException, RxTweetException, StreamConnectionError, network_reason
from ..http import redact_url
from ..reconnect import RATE_LIMIT_RESET_WAIT_MAX

__all__ = ["RestCalls"]

log = logging.getLogger(__package__)

#: ``scheme://user:password@`` in any text (a URL quoted by a dependency's message).
_USERINFO = re.compile(r"//[^/\s@]+@")

_RESETS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, RemoteDisconnected)

#: (connect, read) timeouts of one REST call, in seconds.
_TIMEOUTS = (10, 30)


class RestCalls:
    """Mixin: REST calls with X's rate-limit waits, one reset retry and scrubbed errors.

    The class it is mixed into provides ``session``, ``proxies``, ``verify``,
    ``bearer_token`` and ``wait_on_rate_limit`` (as :class:`~rxtweet.v2.StreamingClient`
    does) and :meth:`_headers`.
    """

    session: requests.Session
    proxies: dict[str, str]
    verify: bool | str
    bearer_token: str
    wait_on_rate_limit: bool

    def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _sleep(self, seconds: float) -> None:
        # A method, so that tests (and users) can replace it, and time.sleep is looked up late.
        time.sleep(seconds)

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> requests.Response:
        """One call, answered 2xx; the typed exception otherwise.

        Raises:
            HTTPException: (a subclass) for a non-2xx answer (a 429 is waited out first when
                ``wait_on_rate_limit``).
            StreamConnectionError: the network failed (its message carries no credential).
        """
        request_line = f"{method} {redact_url(url)}"
        while True:
            response = self._send(method, url, request_line, params=params, json=json)
            if response.status_code == 429 and self.wait_on_rate_limit:
                error = HTTPException.from_response(response, request_line=request_line)
                wait = error.rate_limit.seconds_until_reset() if error.rate_limit else None
                # As tweepy: until the reset plus a second; a reset already past: no wait.
                wait = 60.0 if wait is None else (wait + 1 if wait > 0 else 0.0)
                if wait > RATE_LIMIT_RESET_WAIT_MAX:
                    # A reset hours or years away is a broken header or clock, not a plan:
                    # wait as long as the stream side would, then ask again.
                    log.warning(
                        "Rate limit exceeded; the reset is %d seconds away. Sleeping for %d "
                        "seconds (the maximum), then retrying.",
                        round(wait),
                        round(RATE_LIMIT_RESET_WAIT_MAX),
                    )
                    wait = RATE_LIMIT_RESET_WAIT_MAX
                else:
                    log.warning("Rate limit exceeded. Sleeping for %d seconds.", round(wait))
                self._sleep(wait)
                continue
            if not 200 <= response.status_code < 300:
                raise HTTPException.from_response(response, request_line=request_line)
            return response

    def _send(
        self,
        method: str,
        url: str,
        request_line: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> requests.Response:
        # A kept-alive connection the server has closed meanwhile fails as a reset when it is
        # reused: that says nothing about the server, so it is retried once (on a fresh
        # connection: urllib3 drops the broken one). Other network failures are not retried.
        for attempt in (1, 2):
            try:
                return self.session.request(
                    method,
                    url,
                    params=params or None,
                    json=json,
                    headers=self._headers(),
                    proxies=self.proxies or None,
                    verify=self.verify,
                    timeout=_TIMEOUTS,
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt == 1 and _was_reset(exc):
                    log.debug("%s: connection reset; retrying once", request_line)
                    continue
                raise self._network_error(exc, request_line) from (
                    None if self._leaks(exc) else exc
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _network_error(self, exc: BaseException, request_line: str) -> StreamConnectionError:
        reason = self._scrub(network_reason(exc))
        return StreamConnectionError(
            f"{request_line}: {reason}", cause=None if self._leaks(exc) else exc
        )

    def _scrub(self, text: str) -> str:
        # Dependencies' messages may quote a header or a URL: keep no credential in ours.
        text = text.replace(self.bearer_token, "<redacted>")
        return _USERINFO.sub("//<redacted>@", text)

    def _leaks(self, exc: BaseException) -> bool:
        """Whether any exception in ``exc``'s chain would show a credential when printed."""
        for current in _linked(exc):
            text = f"{current!s} {current!r}"
            if self.bearer_token in text or _USERINFO.search(text):
                return True
        return False


def _was_reset(exc: BaseException) -> bool:
    """Whether ``exc`` is a reset (or close) of an established connection, not a refusal."""
    for current in _linked(exc):
        if isinstance(current, urllib3.exceptions.NewConnectionError | requests.Timeout):
            return False
        if isinstance(current, _RESETS):
            return True
    return False


def _linked(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception linked to it (cause, context, exception args, urllib3's
    ``reason``), depth first, each once: dependencies wrap the real failure in several."""
    pending: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend((current.__cause__, current.__context__))
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)


def json_of(response: requests.Response, method: str) -> Any:
    """The JSON of a 2xx answer; an :class:`~rxtweet.errors.RxTweetException` (naming the
    redacted request, not the body) when it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:
        raise RxTweetException(
            f"{method} {redact_url(response.url or '')} answered {response.status_code} with "
            "a body that is not JSON"
        ) from exc
