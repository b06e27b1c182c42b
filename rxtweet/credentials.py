"""Checking credentials before they reach a header, a signature or a log line.

A credential copied from a file saved with CRLF, or pasted with a trailing space, would
otherwise reach ``requests``, whose ``InvalidHeader`` message quotes the whole header value:
the secret would then travel in an exception, a log line or the CLI's output. So every
credential a client is given passes through :func:`clean_credential` at construction:
surrounding whitespace is stripped, and anything else that cannot be in a header value is
refused with an error that names the argument and the position, never the value.
"""

from __future__ import annotations

__all__ = ["clean_credential"]


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
