"""Checking credentials before they reach a header, a signature or a log line.

A credential copied from a file saved with CRLF, or pasted with a trailing space, would
otherwise reach ``requests``, whose ``InvalidHeader`` message quotes the whole header value:
the secret would then travel in an exception, a log line or the CLI's output. So every
credential a client is given passes through :func:`clean_credential` at construction:
surrounding whitespace is stripped, and anything else that cannot be in a header value is
refused with an error that names the argument and the position, never the value.

Text from elsewhere (a dependency's exception, X's problem document echoing a header) is
cleaned with :func:`scrub_secrets` over the forms :func:`secrets_of` finds in the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .http import SECRET_HEADERS

if TYPE_CHECKING:
    from .http import StreamRequest

__all__ = ["clean_credential", "scrub_secrets", "secrets_of"]

#: The shortest text :func:`secrets_of` treats as a credential.
_MIN_SECRET: Final = 4


def clean_credential(name: str, value: object) -> str:
    """``value`` with surrounding whitespace removed; raises when it cannot be a credential.

    Args:
        name: the argument's name, for the message (``"bearer_token"``).
        value: what the caller passed.

    Returns:
        The stripped credential.

    Raises:
        TypeError: ``value`` is not a ``str``.
        ValueError: it is empty once stripped, or holds a control character or a character
            outside printable ASCII (neither can be sent in an HTTP header as is). The
            message gives the position and the character's code point class, not the value.

    >>> clean_credential("bearer_token", "  AAAA%2Fb\\r\\n")
    'AAAA%2Fb'
    >>> clean_credential("bearer_token", "ab\\x00cd")
    Traceback (most recent call last):
    ...
    ValueError: bearer_token has a control character at position 3 (not shown)
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    cleaned = value.strip()
    if not cleaned:
        raise ValueError(f"{name} is empty")
    for position, char in enumerate(cleaned, start=1):
        code = ord(char)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            raise ValueError(f"{name} has a control character at position {position} (not shown)")
        if code > 0x7E:
            raise ValueError(
                f"{name} has a non-ASCII character at position {position} (not shown); "
                "X's credentials are plain ASCII: was it copied with a smart quote or a "
                "non-breaking space?"
            )
    return cleaned


def secrets_of(request: StreamRequest) -> tuple[str, ...]:
    """Every form in which a credential of ``request`` could show up in a dependency's text.

    The values of credential headers (whole, stripped, each word, and as ``repr`` escapes
    them) and the userinfo of the URL and of the proxies. Longest first, so that a part is
    never replaced before the whole.
    """
    found: set[str] = set()
    for name, value in (request.headers or {}).items():
        if str(name).lower() in SECRET_HEADERS:
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            for form in (text, text.strip(), *text.split()):
                found.update((form, repr(form)[1:-1]))
    for url in (request.url, *(request.proxies or {}).values()):
        authority = str(url).partition("://")[2].split("/", 1)[0]
        userinfo = authority.rpartition("@")[0]
        if userinfo:
            found.update((userinfo, userinfo.partition(":")[2]))
    # Shorter forms are left alone: no real credential is that short, and replacing every
    # "t" of a message with <redacted> (a test's token "t") makes it unreadable.
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True))


def scrub_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every one of ``secrets`` (from :func:`secrets_of`) replaced by
    ``<redacted>``.

    >>> scrub_secrets("401 for Bearer AAAA", ("AAAA",))
    '401 for Bearer <redacted>'
    """
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "<redacted>")
    return text
