"""HTTP-level value objects: what a stream connection asks for and what it is told.

These are plain data, shared by the transport (which performs a :class:`StreamRequest`),
the error types (which carry a :class:`RateLimit`) and the reconnect policy (which reads it).
Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .errors import InvalidRequest

__all__ = ["InvalidRequest", "RateLimit", "StreamRequest", "redact_headers", "redact_url"]

#: Header names whose values are credentials. They never appear in a repr, a log line or
#: an exception message.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def __getattr__(name: str) -> Any:
    # InvalidRequest lives in rxtweet.errors, which imports this module: re-exported lazily
    # (PEP 562) so that the old path keeps working without an import cycle.
    if name == "InvalidRequest":
        from .errors import InvalidRequest

        return InvalidRequest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Return a copy of ``headers`` safe to log: credential values become ``"<redacted>"``."""
    if not headers:
        return {}
    return {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def redact_url(url: str) -> str:
    """``url`` safe to show: ``user:password@`` becomes ``<redacted>@``; the rest is kept.

    >>> redact_url("https://user:secret@proxy.example:8080/2/tweets?x=1")
    'https://<redacted>@proxy.example:8080/2/tweets?x=1'
    >>> redact_url("https://api.x.com/2/tweets/sample/stream")
    'https://api.x.com/2/tweets/sample/stream'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority_end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if 0 <= index < authority_end:
            authority_end = index
    authority = rest[:authority_end]
    if "@" not in authority:
        return url
    host = authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}<redacted>@{host}{rest[authority_end:]}"


class RateLimit(NamedTuple):
    """The ``x-rate-limit-*`` headers of a response (X sends them on stream connects).

    ``reset`` is a UNIX epoch in seconds. ``remaining`` counts the requests *left* in the
    current 15-minute window (the docs' wording says otherwise; observed values do not).
    """

    limit: int | None
    remaining: int | None
    reset: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> RateLimit | None:
        """Parse the headers, or return ``None`` when none of them is present or valid."""
        if not headers:
            return None
        # requests' CaseInsensitiveDict handles case; a plain dict may not.
        lowered = {k.lower(): v for k, v in headers.items()}

        def _int(name: str) -> int | None:
            raw = lowered.get(name)
            if raw is None:
                return None
            try:
                return int(str(raw).strip())
            except ValueError:
                return None

        limit = _int("x-rate-limit-limit")
        remaining = _int("x-rate-limit-remaining")
        reset = _int("x-rate-limit-reset")
        if limit is None and remaining is None and reset is None:
            return None
        return cls(limit, remaining, reset)

    def seconds_until_reset(self, now: float | None = None) -> float | None:
        """Seconds from ``now`` (default: wall clock) until ``reset``; ``None`` if unknown."""
        if self.reset is None:
            return None
        return max(0.0, self.reset - (time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """Everything needed to open one streaming HTTP connection.

    The transport performs it once per subscription. ``auth`` is anything ``requests``
    accepts (an ``AuthBase`` such as an OAuth1 signer, or a callable); credentials in
    ``headers`` or ``auth``, and the ``user:password@`` part of ``url``, never show in the
    repr.
    """

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    data: Any = None
    json: Any = None
    auth: Any = field(default=None, repr=False)
    proxies: Mapping[str, str] | None = field(default=None, repr=False)
    verify: bool | str = True

    def __repr__(self) -> str:
        parts = [f"{self.method} {redact_url(self.url)}"]
        if self.params:
            parts.append(f"params={dict(self.params)!r}")
        if self.headers:
            parts.append(f"headers={redact_headers(self.headers)!r}")
        if self.data is not None or self.json is not None:
            parts.append("body=<...>")
        if self.auth is not None:
            parts.append(f"auth=<{type(self.auth).__name__}>")
        if self.proxies:
            parts.append("proxies=<set>")
        return f"StreamRequest({', '.join(parts)})"
