"""What every ``rxtweet`` command shares: exit codes, errors, credentials, descriptions.

Credentials come from flags or from the environment (``X_BEARER_TOKEN``, ``X_CONSUMER_KEY``,
``X_CONSUMER_SECRET``, ``X_ACCESS_TOKEN``, ``X_ACCESS_TOKEN_SECRET``). Every value found is
registered with a :class:`Redactor`, which the command line's log handler and error printer
apply, so that no credential is ever echoed to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import urlsplit

import requests

from ..credentials import clean_credential
from ..errors import (
    BadRequest,
    Forbidden,
    HTTPException,
    InvalidStreamParameter,
    StreamConnectionError,
    Unauthorized,
    UsageCapExceeded,
    describe,
)
from ..reconnect import RetriesExhausted

__all__ = [
    "ENV_ACCESS_TOKEN",
    "ENV_ACCESS_TOKEN_SECRET",
    "ENV_BEARER_TOKEN",
    "ENV_CONSUMER_KEY",
    "ENV_CONSUMER_SECRET",
    "CliError",
    "ExitCode",
    "OAuth1Credentials",
    "Redactor",
    "bearer_token",
    "describe_cause",
    "error_for",
    "join_new_threads",
    "non_negative_float",
    "non_negative_int",
    "oauth1_credentials",
    "port",
    "positive_float",
    "positive_int",
    "register_base_url",
    "silence_stdout",
]

#: The old name of :func:`rxtweet.errors.describe` (demo, stream and user code import it here).
describe_cause = describe

ENV_BEARER_TOKEN = "X_BEARER_TOKEN"  # noqa: S105 - a variable's name, not a secret
ENV_CONSUMER_KEY = "X_CONSUMER_KEY"
ENV_CONSUMER_SECRET = "X_CONSUMER_SECRET"  # noqa: S105
ENV_ACCESS_TOKEN = "X_ACCESS_TOKEN"  # noqa: S105
ENV_ACCESS_TOKEN_SECRET = "X_ACCESS_TOKEN_SECRET"  # noqa: S105


# -- argparse value types (every command's numeric options) ----------------------------------


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (0: any free one)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {value}")
    return value


def positive_int(text: str) -> int:
    """An int > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def non_negative_int(text: str) -> int:
    """An int >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def non_negative_float(text: str) -> float:
    """A float >= 0 (not NaN)."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def positive_float(text: str) -> float:
    """A float > 0 (not NaN)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


class ExitCode(IntEnum):
    """The exit statuses of ``rxtweet`` (listed in ``rxtweet --help``)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    INVALID_RULE = 3
    UNAUTHORIZED = 4
    NO_RULES = 5
    FORBIDDEN = 6
    USAGE_CAPPED = 7
    INTERRUPTED = 130


EXIT_CODES_HELP = """\
exit status:
  0    success (serve and demo --forever also exit 0 when stopped with Ctrl-C)
  1    any other error: network, server errors after retries, files (a full disk)
  2    usage error, including missing or malformed credentials and X's 400 Bad Request
       for a parameter (an unknown field, a value out of range)
  3    a rule was rejected (invalid rule 400/422, unknown rule id, bad rules file)
  4    401 Unauthorized: the credentials were refused
  5    filtered stream without rules (409 RuleConfigurationIssue): add rules first with
       `rxtweet rules add VALUE`
  6    403 Forbidden: the app has no access to this endpoint
  7    429 usage-capped: the app's Daily or Monthly usage cap is used up; retrying cannot
       help before the period resets
  130  interrupted (Ctrl-C or SIGTERM) after a clean stop: every line written is complete
"""


class CliError(Exception):
    """A failure to report in one or two lines (no traceback) with its exit status.

    ``usage`` asks for the command's usage line to be printed first (missing credentials,
    conflicting options). ``hint`` is a second line telling the user what to do.
    """

    def __init__(
        self,
        message: str,
        code: ExitCode = ExitCode.ERROR,
        *,
        hint: str | None = None,
        usage: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
        self.usage = usage


#: ``scheme://userinfo@`` anywhere in a text (``requests`` and ``urllib3`` put whole URLs in
#: their messages).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@")


class Redactor:
    """Replaces every registered secret in a text by ``<redacted>``. Thread-safe.

    The ``user:password@`` part of any URL in the text is redacted too, registered or not.
    """

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    #: Shorter values are not treated as secrets (redacting "a" would garble every line).
    MIN_LENGTH = 4

    def add(self, *secrets: str | None) -> None:
        """Register secrets (empty and very short values are ignored)."""
        with self._lock:
            known = set(self._secrets)
            known.update(s for s in secrets if s and len(s) >= self.MIN_LENGTH)
            # Longest first, so a secret containing another is replaced whole.
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "<redacted>")
        if "@" in text:
            text = _URL_USERINFO.sub(r"\1<redacted>@", text)
        return text


# --- credentials --------------------------------------------------------------------------


def _from(args: argparse.Namespace, attribute: str, env: str, redactor: Redactor) -> str | None:
    """The credential from ``--flag`` or ``$ENV``, stripped of surrounding whitespace.

    Raises:
        CliError: (exit 2) when it holds a control or non-ASCII character; the message names
            the flag or variable and the position, never the value.
    """
    flag_value = getattr(args, attribute, None)
    source = "--" + attribute.replace("_", "-") if flag_value else env
    value = flag_value or os.environ.get(env) or None
    if value is None:
        return None
    redactor.add(value)
    try:
        cleaned = clean_credential(source, value)
    except ValueError as exc:
        if not value.strip():
            return None  # an empty or blank variable is the same as none
        raise CliError(
            f"{exc}: a credential is one line of printable ASCII",
            ExitCode.USAGE,
            hint="was it copied from a file with Windows line endings, or with a smart quote?",
        ) from None
    redactor.add(cleaned)
    return cleaned


def register_base_url(url: str | None, redactor: Redactor) -> None:
    """Register the ``user:password`` of ``--base-url`` (a proxy's, say) as secrets."""
    if not url:
        return
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if "@" in parts.netloc:
            userinfo = parts.netloc.rsplit("@", 1)[0]
            redactor.add(userinfo, parts.password)


def bearer_token(args: argparse.Namespace, redactor: Redactor) -> str:
    """The v2 bearer token from ``--bearer-token`` or ``X_BEARER_TOKEN``.

    Raises:
        CliError: (usage, exit 2) when there is none.
    """
    token = _from(args, "bearer_token", ENV_BEARER_TOKEN, redactor)
    if token is None:
        raise CliError(
            f"no bearer token: set {ENV_BEARER_TOKEN} (or pass --bearer-token)",
            ExitCode.USAGE,
            hint="`rxtweet demo` runs offline, without credentials",
            usage=True,
        )
    return token


@dataclass(frozen=True, slots=True)
class OAuth1Credentials:
    """The four OAuth 1.0a values the v1.1 endpoints need (never shown in a repr)."""

    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str

    def __repr__(self) -> str:
        return "OAuth1Credentials(<redacted>)"


def oauth1_credentials(args: argparse.Namespace, redactor: Redactor) -> OAuth1Credentials:
    """The v1.1 credentials from flags or ``X_CONSUMER_KEY`` … ``X_ACCESS_TOKEN_SECRET``.

    Raises:
        CliError: (usage, exit 2) naming the missing ones (by variable, never by value).
    """
    names = (
        ("consumer_key", ENV_CONSUMER_KEY),
        ("consumer_secret", ENV_CONSUMER_SECRET),
        ("access_token", ENV_ACCESS_TOKEN),
        ("access_token_secret", ENV_ACCESS_TOKEN_SECRET),
    )
    values = {attr: _from(args, attr, env, redactor) for attr, env in names}
    missing = [env for attr, env in names if values[attr] is None]
    if missing:
        raise CliError(
            f"the v1.1 endpoints need OAuth 1.0a user credentials; missing: {', '.join(missing)}"
            " (or the matching --consumer-key/--consumer-secret/--access-token/"
            "--access-token-secret flags)",
            ExitCode.USAGE,
            usage=True,
        )
    return OAuth1Credentials(**{k: v for k, v in values.items() if v is not None})


# --- errors --------------------------------------------------------------------------------


def error_for(exc: BaseException, *, what: str = "the stream") -> CliError:
    """The :class:`CliError` (message and exit status) for an exception that ended a command.

    Messages may quote the server (reason phrase, problem detail): the printer escapes their
    control characters (:func:`~rxtweet.cli.console.printable`); the redactor removes secrets.
    """
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, RetriesExhausted) and isinstance(exc.cause, UsageCapExceeded):
        exc = exc.cause
    if isinstance(exc, HTTPException):
        return _http_error(exc, what)
    if isinstance(exc, InvalidStreamParameter):
        # Found before connecting: the command line is wrong, not the network.
        text = str(exc).replace("pass strict=False", "add --allow-unknown-fields")
        return CliError(text, ExitCode.USAGE)
    if isinstance(exc, RetriesExhausted):
        return CliError(f"gave up after {exc.retries} reconnects: {describe(exc.cause)}")
    if isinstance(exc, StreamConnectionError):
        return CliError(f"connection failed: {_connection_text(exc)}")
    if isinstance(exc, requests.RequestException):
        # Described as the connection failure it is (a refusal is then named plainly).
        wrapped = StreamConnectionError(str(exc), cause=exc)
        if describe(wrapped).startswith("connection refused"):
            return CliError(f"network error: {describe(wrapped)}")
        return CliError(f"network error: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return CliError(f"{type(exc).__name__}: {exc}")
    return CliError(f"{type(exc).__name__}: {exc}")


def _http_error(exc: HTTPException, what: str) -> CliError:
    status = exc.status_code
    detail = exc.detail or exc.title or exc.reason or ""
    if isinstance(exc, Unauthorized):
        return CliError(
            f"401 Unauthorized: {what} refused the credentials ({detail})".replace(" ()", ""),
            ExitCode.UNAUTHORIZED,
            hint="check the token (X_BEARER_TOKEN, or the X_CONSUMER_*/X_ACCESS_* "
            "variables for --v1); OAuth 1.0a also fails when the clock is off",
        )
    if isinstance(exc, Forbidden):
        return CliError(
            f"403 Forbidden: {detail or 'this app has no access to the endpoint'}",
            ExitCode.FORBIDDEN,
        )
    if isinstance(exc, UsageCapExceeded):
        return CliError(describe(exc), ExitCode.USAGE_CAPPED, hint=_USAGE_CAP_HINT)
    if status == 409 and (
        exc.connection_issue == "RuleConfigurationIssue" or exc.connection_issue is None
    ):
        return CliError(
            "the filtered stream has no rules (409 RuleConfigurationIssue)",
            ExitCode.NO_RULES,
            hint='add rules first, e.g. `rxtweet rules add "cat has:images" --tag cats`',
        )
    if status == 422:
        return CliError(
            f"422 {exc.reason or 'Unprocessable Entity'}: the server rejected the rule(s): "
            f"{exc.problem}".rstrip(": "),
            ExitCode.INVALID_RULE,
        )
    if isinstance(exc, BadRequest):
        return CliError(
            f"400 Bad Request: {exc.problem}".rstrip(": "),
            ExitCode.USAGE,
            hint="check the --*-fields and --expansions values and the other options",
        )
    return CliError(f"HTTP {status} {exc.reason}: {exc.problem}".rstrip(": "))


_USAGE_CAP_HINT = (
    "retrying cannot help before the period resets; see the usage of your app in X's "
    "developer portal"
)


def _connection_text(exc: BaseException) -> str:
    """What went wrong with a connection: ``connection refused by HOST:PORT``, or the
    failure's own text without the request line (and redacted)."""
    return describe(exc).removeprefix("connection lost: ")


def join_new_threads(before: set[threading.Thread], timeout: float = 3.0) -> list[str]:
    """Join the threads started since ``before`` was taken; return those still alive."""
    deadline = time.monotonic() + timeout
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread in before or thread is current:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        t.name
        for t in threading.enumerate()
        if t not in before and t is not current and t.is_alive()
    ]


def silence_stdout() -> None:
    """After EPIPE on stdout (``rxtweet ... | head``): point stdout at /dev/null, so that
    the interpreter's last flush does not fail with a second error."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
