"""Regression tests for the command line's hardening (issue 10 items 3, 10-13, 16, 19 and
issue 11 items 10-12): whole lines on a full disk, escaped server text, usage caps,
credentials, userinfo in --base-url, exit codes, subcommand usage, the rules shown by
``filter``, periodic status lines and refused connections.

Servers are real (FakeStreamServer, or ``support.RawServer`` on 127.0.0.1); the full-disk
case runs the CLI in a subprocess with ``RLIMIT_FSIZE``.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import RawServer, answer

from rxtweet.cli import main
from rxtweet.cli.common import ExitCode, Redactor, error_for
from rxtweet.cli.console import Console, printable
from rxtweet.errors import BadRequest, HTTPException
from rxtweet.testing import Attempt, FakeStreamServer, generate_v2_messages

pytestmark = pytest.mark.integration

TOKEN = "AAAAAAAAAAAAAAAAAAAAA-hardening-cli-token"
LINES = [orjson.dumps(m) for m in islice(generate_v2_messages(seed=5), 200)]
HERMETIC_ENV = {"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "24", "LANG": "C.UTF-8"}


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_COLOR", "FORCE_COLOR", "LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in HERMETIC_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def fake(**kwargs: Any) -> FakeStreamServer:
    """Messages as given: the exact lines are compared."""
    return FakeStreamServer(
        **{"fields": "all", "match_rules": False, "bearer_token": TOKEN, **kwargs}
    )


#: The conftest's ``server`` skips its reader-thread check here: the CLI runs its own.
CHECK_READER_THREADS = False


@pytest.fixture
def fake_stream_server_options() -> dict[str, Any]:
    """``server`` (tests/conftest.py) is built as ``fake`` builds one."""
    return {"fields": "all", "match_rules": False, "bearer_token": TOKEN, "messages": LINES}


# --- item 12: a failed write leaves whole lines -----------------------------------------------


def _run_limited(args: list[str], fsize: int) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "rxtweet", *args],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=limit,  # the test's own child, no threads involved
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
    )


def test_full_disk_leaves_whole_lines_and_counts_only_what_was_written(
    server: FakeStreamServer, tmp_path: Path
) -> None:
    out = tmp_path / "full.jsonl"
    limit = sum(len(line) + 1 for line in LINES[:40]) + 500  # mid-line, well before the end
    done = _run_limited(["sample", "--base-url", server.url, "-o", str(out)], limit)
    assert done.returncode == ExitCode.ERROR, done.stderr
    assert "Traceback" not in done.stderr
    data = out.read_bytes()
    assert data.endswith(b"\n")  # no partial last line
    written = data.splitlines()
    assert written == LINES[: len(written)] and len(written) >= 40
    # The summary counts what reached the file, not what was received.
    assert f"{len(written)} messages ({len(written)} tweets) written to" in done.stderr
    assert "the file ends with the last complete line" in done.stderr

    # Appending again continues with valid JSONL.
    with fake(messages=LINES[150:]) as second:
        assert main(["sample", "--base-url", second.url, "--limit", "2", "-q", "-o", str(out)]) == 0
    assert out.read_bytes().splitlines() == written + LINES[150:152]


def test_record_on_a_full_disk_leaves_whole_entries(
    server: FakeStreamServer, tmp_path: Path
) -> None:
    out = tmp_path / "rec.jsonl"
    done = _run_limited(["record", "--base-url", server.url, "-o", str(out)], 20_000)
    assert done.returncode == ExitCode.ERROR, done.stderr
    data = out.read_bytes()
    assert data.endswith(b"\n")
    entries = [orjson.loads(line) for line in data.splitlines()]  # every line is whole JSON
    assert entries[0]["rxtweet"] == "record"


def test_appending_to_a_file_that_ends_mid_line_repairs_it_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "broken.jsonl"
    out.write_bytes(LINES[0] + b"\n" + LINES[1][:12])  # a run killed mid-write
    with fake(messages=LINES[10:]) as server:
        assert main(["sample", "--base-url", server.url, "--limit", "1", "-o", str(out)]) == 0
    assert out.read_bytes().splitlines() == [LINES[0], LINES[10]]
    err = capsys.readouterr().err
    assert "WARNING" in err and "ended in a partial line (12 bytes" in err

    whole = tmp_path / "no-final-newline.jsonl"
    whole.write_bytes(LINES[5])  # complete JSON, only the newline missing: kept
    with fake(messages=LINES[20:]) as server:
        assert main(["sample", "--base-url", server.url, "--limit", "1", "-o", str(whole)]) == 0
    assert whole.read_bytes().splitlines() == [LINES[5], LINES[20]]
    assert "added one before appending" in capsys.readouterr().err


# --- item 13: terminal escapes from the network are shown escaped ------------------------------


HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m"


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_escape_sequences_from_the_server_never_reach_the_terminal(
    capsys: pytest.CaptureFixture[str], verbose: list[str]
) -> None:
    body = orjson.dumps({"title": "Service \x1b[5mUnavailable", "detail": HOSTILE})
    response = (
        b"HTTP/1.1 503 \x1b]0;pwned\x07\x1b[2J\r\nContent-Type: application/problem+json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    with RawServer(answer(response)) as server:
        argv = ["sample", "--base-url", server.url, "--max-retries", "0", "-o", os.devnull]
        code = main([*verbose, *argv])
    assert code == ExitCode.ERROR
    captured = capsys.readouterr()
    shown = captured.err + captured.out
    assert "503" in shown
    for byte in ("\x1b", "\x07", "\x9b"):
        assert byte not in shown
    assert "\\x1b]0;pwned\\x07" in shown  # shown, inert


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("a\x1b[2Jb\x07\x7f\x85\u202e") == "a\\x1b[2Jb\\x07\\x7f\\x85\\u202e"
    assert printable("café 猫 🐈 tab\there") == "café 猫 🐈 tab\\x09here"
    assert printable("two\nlines\r", keep_newlines=True) == "two\nlines\\x0d"


def run_against(tmp_path: Path, status: int, problem: dict[str, Any], *command: str) -> int:
    """Run ``rxtweet <command>`` against a server whose answer is ``status`` with ``problem``."""
    with fake(messages=LINES) as server:
        server.script(Attempt(status=status, body=problem))
        return main([*command, "--base-url", server.url, "-o", str(tmp_path / "o.jsonl")])


# --- item 3: usage caps ----------------------------------------------------------------------


def test_usage_cap_names_the_cap_and_exits_7(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = {
        "title": "UsageCapExceeded",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped",
        "period": "Monthly",
        "scope": "Product",
    }
    code = run_against(tmp_path, 429, problem, "sample")
    assert code == ExitCode.USAGE_CAPPED == 7
    err = capsys.readouterr().err
    assert "the Monthly usage cap of the Product is used up" in err
    assert "retrying cannot help" in err
    assert "rate limited" not in err


# --- item 10: credentials ----------------------------------------------------------------------


def test_a_token_with_a_trailing_cr_is_stripped_and_works(
    server: FakeStreamServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN + "\r")  # $(cat token-file-with-crlf)
    out = tmp_path / "cr.jsonl"
    assert main(["sample", "--base-url", server.url, "--limit", "2", "-o", str(out)]) == 0
    assert out.read_bytes().splitlines() == LINES[:2]
    assert TOKEN not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("source", "bad"),
    [("flag", "tok-secret-\x00-value"), ("env", "tok-secret-\x1b[2J-value")],
)
def test_a_token_with_a_control_character_is_refused_without_echoing_it(
    server: FakeStreamServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
    bad: str,
) -> None:
    args = ["sample", "--base-url", server.url, "--limit", "1"]
    if source == "flag":
        args += ["--bearer-token", bad]
    else:
        monkeypatch.setenv("X_BEARER_TOKEN", bad)
    assert main(args) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert "control character at position 12 (not shown)" in captured.err
    name = "--bearer-token" if source == "flag" else "X_BEARER_TOKEN"
    assert name in captured.err
    for text in (captured.err, captured.out):
        assert "tok-secret" not in text and "value" not in text
    assert server.stream_requests == []


# --- item 11: userinfo in --base-url ---------------------------------------------------------


@pytest.mark.parametrize("password", ["s3cret-proxy-password", "pw"])
def test_userinfo_of_the_base_url_is_never_shown(
    capsys: pytest.CaptureFixture[str], password: str
) -> None:
    with fake() as closed:
        port = closed.url.rsplit(":", 1)[1]
    url = f"http://proxyuser:{password}@127.0.0.1:{port}"
    code = main(["-v", "sample", "--base-url", url, "--max-retries", "1", "-o", os.devnull])
    assert code == ExitCode.ERROR
    captured = capsys.readouterr()
    shown = captured.err + captured.out
    assert f":{password}@" not in shown and "proxyuser:" not in shown
    assert password not in shown or len(password) < Redactor.MIN_LENGTH
    assert f"connection refused by 127.0.0.1:{port}" in shown


def test_redactor_redacts_userinfo_of_any_url() -> None:
    redact = Redactor()
    assert (
        redact("GET https://u:p@h.example/x failed") == "GET https://<redacted>@h.example/x failed"
    )
    assert redact("mail me@example.com") == "mail me@example.com"


# --- item 16 / issue 11 item 12: exit codes and details ---------------------------------------


def test_a_400_for_a_bad_field_exits_2_with_the_parameter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = {
        "errors": [
            {
                "parameters": {"tweet.fields": ["creted_at"]},
                "message": "The `tweet.fields` query parameter value [creted_at] is not one of "
                "[attachments,author_id,created_at]",
            }
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    code = run_against(tmp_path, 400, problem, "sample")
    assert code == ExitCode.USAGE == 2
    err = capsys.readouterr().err
    assert "400 Bad Request" in err
    assert "tweet.fields=creted_at" in err and "is not one of" in err


def test_a_422_for_an_invalid_rule_exits_3_with_the_details(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = {
        "errors": [
            {
                "value": "--b",
                "details": ["Rules must contain a non-negation term (at position 1)"],
                "title": "UnprocessableEntity",
                "type": "https://api.twitter.com/2/problems/invalid-rules",
            }
        ],
        "title": "Invalid Rules",
        "detail": "One or more rules are invalid.",
    }
    code = run_against(tmp_path, 422, problem, "filter", "-q")
    assert code == ExitCode.INVALID_RULE == 3
    err = capsys.readouterr().err
    assert "rule '--b': Rules must contain a non-negation term (at position 1)" in err


def test_error_for_keeps_per_rule_details_of_a_400() -> None:
    exc = BadRequest(
        400,
        reason="Bad Request",
        body={"errors": [{"value": "x", "details": ["too long", "bad op"]}], "title": "Bad"},
    )
    error = error_for(exc)
    assert error.code == ExitCode.USAGE
    assert "rule 'x': too long; bad op" in error.message
    assert error_for(HTTPException(422, reason="Unprocessable")).code == ExitCode.INVALID_RULE


def test_a_misspelt_option_shows_the_subcommand_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--limt", "2"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: rxtweet sample")
    assert "rxtweet sample: error: unrecognized arguments: --limt 2" in err
    assert "did you mean --limit?" in err


# --- issue 11 items 10/11: rules shown, status lines, refused connections ----------------------


def test_filter_lists_the_active_rules_first_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = [{"value": "cat has:images", "tag": "cats"}, {"value": "dog \x1b[2J", "tag": "d\x07"}]
    with fake(messages=LINES, rules=rules) as server:
        code = main(["filter", "--base-url", server.url, "--limit", "1", "-o", str(tmp_path / "f")])
        ids = sorted(server.rules)
    assert code == 0
    err = capsys.readouterr().err
    assert "active rules (2):" in err
    assert "  cat has:images  [cats]  (id " in err
    assert "dog \\x1b[2J  [d\\x07]" in err
    assert "\x1b" not in err and "\x07" not in err
    assert all(rule_id in err for rule_id in ids)
    assert err.index("active rules") < err.index("messages (")


def test_filter_says_when_no_rule_is_active(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake(messages=LINES, require_rules=True) as server:
        code = main(["filter", "--base-url", server.url, "-o", str(tmp_path / "f")])
    assert code == ExitCode.NO_RULES
    assert "no active rules" in capsys.readouterr().err


def test_status_lines_are_printed_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake(messages=LINES[:3], keepalive_interval=0.05, default=Attempt(rate=4)) as server:
        code = main(
            [
                "sample",
                "--base-url",
                server.url,
                "--limit",
                "3",
                "--status-interval",
                "0.2",
                "-o",
                str(tmp_path / "s"),
            ]
        )
    assert code == 0
    err = capsys.readouterr().err
    status = [line for line in err.splitlines() if line.startswith("status after ")]
    assert len(status) >= 2, err
    assert "keep-alives" in status[-1] and "last message 0:00:00 ago" in status[-1]
    assert "\x1b" not in err and "\r" not in err


def test_no_status_lines_on_a_terminal_or_when_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FakeTTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    with fake(messages=LINES[:12], default=Attempt(rate=20)) as server:
        args = ["sample", "--base-url", server.url, "--limit", "12", "--status-interval", "0.05"]
        assert main([*args, "-o", "-"]) == 0
    assert "status after" not in tty.getvalue()
    assert "keep-alives" in tty.getvalue()  # the live line shows them instead


def test_a_refused_connection_is_said_plainly(capsys: pytest.CaptureFixture[str]) -> None:
    with fake() as closed:
        port = closed.url.rsplit(":", 1)[1]
    code = main(["sample", "--base-url", closed.url, "--max-retries", "1", "-o", os.devnull])
    assert code == ExitCode.ERROR
    err = capsys.readouterr().err
    assert f"reconnect #1 at once: connection refused by 127.0.0.1:{port}" in err
    assert f"gave up after 1 reconnects: connection refused by 127.0.0.1:{port}" in err
    assert "HTTPConnection" not in err and "object at 0x" not in err


def test_console_ignores_the_callers_terminal_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    assert Console(io.StringIO(), tty=True).tty is False
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    assert Console(io.StringIO(), tty=True).color is False


# --- issue 11 item 4 on the command line: parameters are checked before any request ----------


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--tweet-fields", "lang,creted_at"],
        ["filter", "--expansions", "bogus.expansion"],
        ["sample", "--backfill-minutes", "10"],
    ],
)
def test_bad_stream_parameters_are_a_usage_error_before_any_request(
    server: FakeStreamServer, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--base-url", server.url, "--limit", "1"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "strict=False" not in err  # the library's advice, not the command line's
    assert server.requests == [], "a request was sent before the parameters were checked"


def test_allow_unknown_fields_sends_a_new_field_name(
    server: FakeStreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sample", "--base-url", server.url, "--limit", "1", "-q"]
    assert main([*argv, "--tweet-fields", "brand_new_field", "--allow-unknown-fields"]) == 0
    assert "brand_new_field" in server.stream_requests[0].query.get("tweet.fields", "")
