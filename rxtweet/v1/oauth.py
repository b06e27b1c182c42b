"""OAuth 1.0a signing for v1.1 requests, without the credentials in DEBUG logs.

requests-oauthlib and oauthlib log the Authorization header (consumer key, access token,
signature) and the signature base string at DEBUG. Importing this module installs a filter
on their two loggers that drops exactly those records: the ones made on a thread while
rxtweet's signer (:class:`_QuietOAuth1`) runs. Everyone else's use of the libraries logs as
before.
"""

from __future__ import annotations

import logging
import threading

import requests
from requests_oauthlib import OAuth1

__all__: list[str] = []

_signing = threading.local()


class _WhileSigning(logging.Filter):
    """Drops the OAuth libraries' DEBUG records made while rxtweet signs a request.

    requests-oauthlib and oauthlib log the Authorization header (consumer key, access
    token, signature) and the signature base string at DEBUG; rxtweet keeps credentials
    out of logs. Only records made on the signing thread, inside rxtweet's signer, are
    dropped: the libraries' logging is untouched for everyone else.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not getattr(_signing, "active", False)


_OAUTH_LOGGERS = ("requests_oauthlib.oauth1_auth", "oauthlib.oauth1.rfc5849")
for _name in _OAUTH_LOGGERS:
    logging.getLogger(_name).addFilter(_WhileSigning())


class _QuietOAuth1(OAuth1):  # type: ignore[misc]
    """``requests_oauthlib.OAuth1`` (HMAC-SHA1), without the credentials in DEBUG logs."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        _signing.active = True
        try:
            return super().__call__(r)  # type: ignore[no-any-return]
        finally:
            _signing.active = False

    def __repr__(self) -> str:
        return "<OAuth1 HMAC-SHA1>"
