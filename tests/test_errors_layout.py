"""Issue 12: every exception in rxtweet.errors, the old paths re-exporting them, and the one
way to describe a failure (errors.describe, network_reason, format_problem,
HTTPException.problem)."""

from __future__ import annotations

import importlib

import pytest

from rxtweet import errors
from rxtweet.errors import (
    BadRequest,
    ChunkedEncodingError,
    InvalidRequest,
    RetriesExhausted,
    RxTweetException,
    StallError,
    StreamConnectionError,
    TooManyRequests,
    TwitterServerError,
    UsageCapExceeded,
    describe,
    format_problem,
    network_reason,
)
from rxtweet.http import StreamRequest


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("rxtweet.http", "InvalidRequest"),
        ("rxtweet.framing", "ChunkedEncodingError"),
        ("rxtweet.basestream", "StreamAlreadyRunning"),
        ("rxtweet.reconnect", "RetriesExhausted"),
        ("rxtweet.operators.share", "BlockedInsideHold"),
    ],
)
def test_old_paths_give_the_same_class(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_everything_derives_from_rxtweet_exception_and_value_errors_stay_value_errors() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, RxTweetException), name
    for kind in (InvalidRequest, ChunkedEncodingError, errors.InvalidStreamParameter):
        assert issubclass(kind, ValueError)


def test_cause_is_dunder_cause() -> None:
    inner = OSError("reset")
    error = StreamConnectionError("GET /x: reset", cause=inner)
    assert error.cause is inner and error.__cause__ is inner
    assert StreamConnectionError("no cause").cause is None
    exhausted = RetriesExhausted(3, inner)
    assert exhausted.cause is exhausted.__cause__ is inner
    assert str(exhausted) == "gave up reconnecting after 3 retries; last failure: OSError: reset"
    assert "without sending anything" in str(RetriesExhausted(1, None))


def test_errors_carry_the_request_and_its_repr_redacts_credentials() -> None:
    request = StreamRequest("GET", "https://x.example/s", headers={"Authorization": "Bearer s3"})
    stall = StallError(21, request=request)
    http = TwitterServerError(503, reason="Unavailable", request=request)
    assert stall.request is request and http.request is request
    assert "s3" not in repr(stall.request)


def test_describe_for_people_and_for_logs() -> None:
    cap = UsageCapExceeded(429, body={"type": "x/usage-capped", "period": "Monthly"})
    assert describe(cap) == "the Monthly usage cap is used up (HTTP 429 usage-capped)"
    limited = TooManyRequests(429, reason="Too Many Requests", body={"connection_issue": "TooMany"})
    assert describe(limited) == "HTTP 429 rate limited (TooMany)"
    refused = StreamConnectionError("GET http://h/x: failed", cause=ConnectionRefusedError(111))
    assert describe(refused) == "connection refused"
    cut = StreamConnectionError("GET http://u:p@h/x: cut at http://u:p@h/y")
    assert describe(cut) == "connection lost: cut at http://<redacted>@h/y"
    assert describe(ValueError("bad")) == "ValueError: bad"
    assert describe(StallError(21), with_type=True) == (
        "StallError: no complete line (message or keep-alive) for 21 s: the stream stalled"
    )


def test_describe_matches_the_cli_wording() -> None:
    from rxtweet.cli.common import describe_cause

    for cause in (
        None,
        StallError(90),
        TwitterServerError(503, reason="Service Unavailable"),
        StreamConnectionError("GET /x: boom", cause=ConnectionRefusedError(111)),
        KeyError("k"),
    ):
        assert describe_cause(cause) == describe(cause)


def test_network_reason_takes_the_innermost_reason_six_levels_down() -> None:
    inner = ConnectionResetError(104, "Connection reset by peer")
    wrapped: BaseException = inner
    for _ in range(5):
        wrapped = OSError(wrapped)
    assert network_reason(wrapped) == "ConnectionResetError: [Errno 104] Connection reset by peer"
    assert network_reason(TimeoutError()) == "TimeoutError"


def test_format_problem_and_http_problem() -> None:
    assert format_problem({"title": "Invalid Rule", "detail": "too long"}) == (
        "Invalid Rule: too long"
    )
    error = BadRequest(
        400,
        reason="Bad Request",
        body={
            "title": "Invalid Request",
            "errors": [{"value": "a (", "details": ["unbalanced"], "message": "invalid"}],
        },
    )
    assert error.problem == "Invalid Request; rule 'a (': invalid; unbalanced"
    assert str(error) == "400 Bad Request: Invalid Request; invalid; unbalanced"
    assert TwitterServerError(503, reason="Unavailable").problem == ""
