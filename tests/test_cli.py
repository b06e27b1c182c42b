"""The ``rxtweet`` command line, driven in-process (``main([...])``) against FakeStreamServer.

``serve`` runs in a subprocess (it stops on a real SIGINT, like a user's Ctrl-C).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest

from rxtweet.cli import main
from rxtweet.cli.common import CliError, ExitCode
from rxtweet.cli.recording import detect_format, read_entries
from rxtweet.cli.rules import parse_rules_file
from rxtweet.testing import Attempt, FakeStreamServer, generate_v2_messages

pytestmark = pytest.mark.integration

TOKEN = "AAAAAAAAAAAAAAAAAAAAA-cli-test-bearer-token"
V1_CREDS = {
    "X_CONSUMER_KEY": "ck-secret-consumer-key",
    "X_CONSUMER_SECRET": "cs-secret-consumer-secret",
    "X_ACCESS_TOKEN": "at-secret-access-token",
    "X_ACCESS_TOKEN_SECRET": "ats-secret-access-token-secret",
}
LINES = [orjson.dumps(m) for m in islice(generate_v2_messages(seed=11), 60)]


def statuses(n: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "id": 1000 + i,
                "id_str": str(1000 + i),
                "text": f"status {i}",
                "in_reply_to_status_id": None,
                "user": {"id": 7, "id_str": "7", "screen_name": "someone"},
            }
        )
        for i in range(n)
    ]


def fake(**kwargs: Any) -> FakeStreamServer:
    """A FakeStreamServer that sends the messages as given (all fields, no rule matching):
    these tests compare the CLI's output with the exact lines."""
    return FakeStreamServer(**{"fields": "all", "match_rules": False, **kwargs})


#: What terminal detection, colour and layout depend on, set the same for every test
#: (an Emacs shell has TERM=dumb, some CI runners NO_COLOR=1 or LANG=C).
HERMETIC_ENV = {"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "24", "LANG": "C.UTF-8"}


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("X_BEARER_TOKEN", *V1_CREDS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    for name in ("NO_COLOR", "FORCE_COLOR", "LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in HERMETIC_ENV.items():
        monkeypatch.setenv(name, value)


#: The conftest's ``server`` skips its reader-thread check here: the CLI runs its own.
CHECK_READER_THREADS = False


@pytest.fixture
def fake_stream_server_options() -> dict[str, Any]:
    """``server`` (tests/conftest.py) sends the messages as given, as ``fake`` does."""
    return {
        "fields": "all",
        "match_rules": False,
        "messages": LINES,
        "bearer_token": TOKEN,
        "keepalive_interval": 0.2,
    }


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


# --- help and usage -----------------------------------------------------------------------------


def test_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "sample", "filter", "rules", "serve", "record"):
        assert command in out
    for code in ("0 ", "2 ", "3 ", "4 ", "5 ", "130"):
        assert f"\n  {code}" in out
    assert "RuleConfigurationIssue" in out


def test_usage_error_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--limit", "zero"]) == 2
    assert "usage:" in capsys.readouterr().err


# --- sample / filter ------------------------------------------------------------------------------


def test_sample_writes_the_exact_lines_and_stops_at_the_limit(
    server: FakeStreamServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "sample",
            "--base-url",
            server.url,
            "--limit",
            "5",
            "-o",
            str(out),
            "--tweet-fields",
            "lang,created_at",
            "--expansions",
            "author_id",
            "--backfill-minutes",
            "2",
        ]
    )
    assert code == 0
    assert read_lines(out) == LINES[:5]
    request = server.stream_requests[0]
    assert request.path == "/2/tweets/sample/stream"
    assert request.query["tweet.fields"] == ["lang,created_at"]
    assert request.query["expansions"] == ["author_id"]
    assert request.query["backfill_minutes"] == ["2"]
    err = capsys.readouterr().err
    assert "5 messages (5 tweets) written to" in err
    # Not a terminal: no progress line, no escapes.
    assert "\r" not in err and "\x1b" not in err

    # -o appends: a second run adds to the file.
    with fake(messages=LINES[40:], bearer_token=TOKEN) as second:
        assert main(["sample", "--base-url", second.url, "--limit", "2", "-o", str(out)]) == 0
    assert read_lines(out) == LINES[:5] + LINES[40:42]


def test_sample_to_stdout_skips_keepalives_and_reports_malformed_lines(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    bad = b'{"data": {"id": "1", "text": "cut sh'
    messages = [LINES[0], b"", bad, LINES[1], b"", LINES[2]]
    with fake(messages=messages, bearer_token=TOKEN) as server:
        assert main(["sample", "--base-url", server.url, "--limit", "3"]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out.splitlines() == LINES[:3]
    err = captured.err.decode()
    assert "dropped a malformed line (truncated JSON, 36 bytes)" in err
    assert "1 dropped" in err


def test_quiet_prints_nothing_but_errors(
    server: FakeStreamServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.jsonl"
    assert main(["sample", "-q", "--base-url", server.url, "--limit", "1", "-o", str(out)]) == 0
    assert capsys.readouterr().err == ""


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setenv("NO_COLOR", "1")
    with fake(messages=LINES, bearer_token=TOKEN, default=Attempt(rate=20)) as server:
        code = main(["filter", "--base-url", server.url, "--limit", "12", "-o", "-"])
    assert code == 0
    err = tty.getvalue()
    assert "streaming /2/tweets/search/stream to stdout; Ctrl-C to stop" in err
    assert "\r\x1b[J" in err  # the progress line was redrawn in place
    assert "messages (" in err and "reconnects 0" in err
    assert "12 messages (12 tweets) written to stdout" in err


def test_reconnects_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fake(messages=LINES, bearer_token=TOKEN) as server:
        server.script(Attempt(messages=2, ending="cut"), Attempt(status=503))
        out = tmp_path / "r.jsonl"
        # The 503 waits 5 s by X's rules; --max-retries 1 gives up instead.
        code = main(
            [
                "sample",
                "--base-url",
                server.url,
                "--limit",
                "5",
                "-o",
                str(out),
                "--max-retries",
                "1",
            ]
        )
    err = capsys.readouterr().err
    assert "reconnect #1 at once: connection lost" in err
    assert code == ExitCode.ERROR
    assert "gave up after 1 reconnects: HTTP 503 Service Unavailable" in err
    assert read_lines(out) == LINES[:2]


def test_filter_without_rules_exits_5_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake(messages=LINES, bearer_token=TOKEN, require_rules=True) as server:
        code = main(["filter", "--base-url", server.url, "-o", str(tmp_path / "f.jsonl")])
    assert code == ExitCode.NO_RULES == 5
    err = capsys.readouterr().err
    assert "409 RuleConfigurationIssue" in err
    assert "rxtweet rules add" in err


def test_unauthorized_exits_4_without_echoing_the_token(
    server: FakeStreamServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "WRONG-token-that-must-never-be-printed"
    monkeypatch.setenv("X_BEARER_TOKEN", wrong)
    code = main(["-v", "sample", "--base-url", server.url, "-o", str(tmp_path / "x.jsonl")])
    assert code == ExitCode.UNAUTHORIZED == 4
    err = capsys.readouterr().err
    assert "401 Unauthorized" in err
    assert "DEBUG" in err  # --verbose logged...
    assert wrong not in err  # ...but never the token


def test_secrets_from_flags_are_redacted_in_verbose_logs(
    server: FakeStreamServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "flag-secret-token-9f8e7d"
    code = main(
        [
            "sample",
            "--verbose",
            "--bearer-token",
            secret,
            "--base-url",
            server.url + f"/?leak={secret}",  # even where rxtweet would log it
            "-o",
            str(tmp_path / "x.jsonl"),
            "--max-retries",
            "0",
        ]
    )
    assert code != 0
    captured = capsys.readouterr()
    assert secret not in captured.err and secret not in captured.out
    assert "<redacted>" in captured.err


def test_missing_credentials_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("X_BEARER_TOKEN")
    assert main(["sample", "--limit", "1"]) == ExitCode.USAGE == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: rxtweet sample")
    assert "X_BEARER_TOKEN" in err and "rxtweet demo" in err
    assert main(["rules", "list"]) == 2


def test_v1_needs_oauth1_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--v1"]) == 2
    err = capsys.readouterr().err
    assert "X_CONSUMER_KEY" in err and "X_ACCESS_TOKEN_SECRET" in err


def test_v1_and_v2_options_do_not_mix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["filter", "--track", "python"]) == 2
    assert "--track belong(s) to API v1.1" in capsys.readouterr().err
    assert main(["sample", "--v1", "--tweet-fields", "lang"]) == 2
    assert "--tweet-fields belong(s) to API v2" in capsys.readouterr().err


# --- v1.1 ---------------------------------------------------------------------------------------


def test_v1_filter_posts_the_form_and_counts_statuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in V1_CREDS.items():
        monkeypatch.setenv(name, value)
    lines = statuses(4)
    with fake(messages=lines, verify_v1=lambda r: True) as server:
        out = tmp_path / "v1.jsonl"
        code = main(
            [
                "filter",
                "--v1",
                "--base-url",
                server.url,
                "--track",
                "python,rxpy",
                "--follow",
                "1,2",
                "--limit",
                "3",
                "-o",
                str(out),
            ]
        )
        request = server.stream_requests[0]
    assert code == 0
    assert read_lines(out) == lines[:3]
    assert request.method == "POST" and request.path == "/1.1/statuses/filter.json"
    assert request.form["track"] == ["python,rxpy"]
    assert request.form["follow"] == ["1,2"]
    assert request.header("authorization", "").startswith("OAuth ")


def test_v1_unauthorized_exits_4_without_echoing_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in V1_CREDS.items():
        monkeypatch.setenv(name, value)
    with fake(messages=statuses(2), verify_v1=lambda r: False) as server:
        code = main(["-v", "sample", "--v1", "--base-url", server.url, "-o", str(tmp_path / "o")])
    assert code == 4
    err = capsys.readouterr().err
    for value in V1_CREDS.values():
        assert value not in err


# --- rules --------------------------------------------------------------------------------------


def test_rules_add_list_delete(
    server: FakeStreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--base-url", server.url]
    assert main(["rules", "list", *base]) == 0
    assert "no rules" in capsys.readouterr().err

    assert main(["rules", "add", "cat has:images", "--tag", "cats", *base]) == 0
    out = capsys.readouterr().out
    [rule] = server.rules.values()
    assert out == f"+ cat has:images  [cats]  (id {rule['id']})\n"

    assert main(["rules", "add", "dog", "--dry-run", *base]) == 0
    assert "dry run: not added" in capsys.readouterr().out
    assert len(server.rules) == 1

    assert main(["rules", "add", "cat has:images", *base]) == 0  # a duplicate: nothing to do
    assert "already a rule" in capsys.readouterr().err

    assert main(["rules", "add", "x" * 600, *base]) == ExitCode.INVALID_RULE == 3
    assert "invalid rule" in capsys.readouterr().err

    assert main(["rules", "list", *base]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "TAG", "VALUE"]
    assert table[1].split(maxsplit=2) == [rule["id"], "cats", "cat has:images"]

    assert main(["rules", "list", "--json", *base]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"id": rule["id"], "value": "cat has:images", "tag": "cats"}
    ]

    assert main(["rules", "delete", "999", *base]) == 3
    assert "no rule with id 999" in capsys.readouterr().err
    assert main(["rules", "delete", rule["id"], *base]) == 0
    assert capsys.readouterr().out == f"- cat has:images  [cats]  (id {rule['id']})\n"
    assert server.rules == {}

    assert main(["rules", "delete", *base]) == 2  # neither ids nor --all


def test_rules_delete_all(capsys: pytest.CaptureFixture[str]) -> None:
    rules = [{"value": "a"}, {"value": "b", "tag": "B"}]
    with fake(bearer_token=TOKEN, rules=rules) as server:
        assert main(["rules", "delete", "--all", "--dry-run", "--base-url", server.url]) == 0
        assert len(server.rules) == 2
        assert main(["rules", "delete", "--all", "--base-url", server.url]) == 0
        assert server.rules == {}
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["- a", "- b", "- a", "- b"]


def test_rules_sync_prints_the_diff_and_applies_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = [
        {"value": "keep me", "tag": "k"},
        {"value": "remove me"},
        {"value": "retag me", "tag": "old"},
    ]
    wanted = tmp_path / "rules.json"
    wanted.write_text(
        json.dumps(
            [
                {"value": "keep me", "tag": "k"},
                {"value": "retag me", "tag": "new"},
                {"value": "new rule", "id": "ignored"},
            ]
        )
    )
    with fake(bearer_token=TOKEN, rules=start) as server:
        base = ["--base-url", server.url]
        before = server.rules
        assert main(["rules", "sync", str(wanted), "--dry-run", *base]) == 0
        dry = capsys.readouterr()
        assert server.rules == before
        assert "(dry run: nothing changed)" in dry.err

        assert main(["rules", "sync", str(wanted), *base]) == 0
        real = capsys.readouterr()
        after = sorted((r["value"], r.get("tag")) for r in server.rules.values())

        assert main(["rules", "sync", str(wanted), *base]) == 0  # idempotent
        again = capsys.readouterr().out
    assert after == [("keep me", "k"), ("new rule", None), ("retag me", "new")]
    diff = [line.split("  (id")[0] for line in real.out.splitlines()]
    assert diff == [
        "- remove me",
        "- retag me  [old]",
        "+ retag me  [new]",
        "+ new rule",
        "= keep me  [k]",
    ]
    assert dry.out == real.out
    assert "2 added, 2 removed, 1 kept" in real.err
    assert [line[0] for line in again.splitlines()] == ["=", "=", "="]


def test_rules_sync_text_file_and_validation_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake(bearer_token=TOKEN, rules=[{"value": "old"}]) as server:
        good = tmp_path / "rules.txt"
        good.write_text("#python lang:en\tpython\ncats\n\n")
        assert main(["rules", "sync", str(good), "--base-url", server.url]) == 0
        assert sorted((r["value"], r.get("tag")) for r in server.rules.values()) == [
            ("#python lang:en", "python"),
            ("cats", None),
        ]
        capsys.readouterr()

        bad = tmp_path / "bad.txt"
        bad.write_text("fine\n" + "y" * 600 + "\n")
        before = server.rules
        assert main(["rules", "sync", str(bad), "--base-url", server.url]) == 3
        assert server.rules == before  # validated before anything changed
        err = capsys.readouterr().err
        assert "rejected by the server; nothing changed" in err


def test_parse_rules_file_formats_and_errors() -> None:
    assert parse_rules_file('{"data": [{"id": "1", "value": "a", "tag": "t"}]}')[0].key == (
        "a",
        "t",
    )
    assert [r.key for r in parse_rules_file("a\tx\na\tx\nb\n")] == [("a", "x"), ("b", None)]
    for text in ("[1]", '[{"value": 3}]', "a\tx\na\ty\n", "[{", '[{"value": " "}]'):
        with pytest.raises(CliError) as info:
            parse_rules_file(text)
        assert info.value.code == ExitCode.INVALID_RULE


# --- record and serve ----------------------------------------------------------------------------


def start_serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxtweet", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    return proc, url


def stop_serve(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return err


def test_serve_replays_a_jsonl_file_with_faults(tmp_path: Path) -> None:
    source = tmp_path / "tweets.jsonl"
    source.write_bytes(b"\n".join(LINES[:10]) + b"\n")
    proc, url = start_serve(
        str(source), "--rate", "0", "--cut-every", "4", "--gzip", "--loop", "--all-fields"
    )
    try:
        out = tmp_path / "out.jsonl"
        assert main(["sample", "--base-url", url, "--limit", "12", "-o", str(out), "-q"]) == 0
    finally:
        err = stop_serve(proc)
    assert read_lines(out) == LINES[:10] + LINES[:2]
    assert "GET /2/tweets/sample/stream -> 200" in err
    assert "stopped: served" in err


def test_record_then_serve_with_original_timing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = [LINES[0], b"", b"\xff not utf-8", LINES[1], LINES[2]]
    recording = tmp_path / "rec.jsonl"
    with fake(messages=messages, bearer_token=TOKEN, default=Attempt(rate=10)) as server:
        assert main(["record", "--base-url", server.url, "--limit", "3", "-o", str(recording)]) == 0
    assert detect_format(recording) == "record"
    header, *entries = [json.loads(line) for line in recording.read_text().splitlines()]
    assert header["rxtweet"] == "record" and header["endpoint"] == "/2/tweets/sample/stream"
    assert [e.get("line", e.get("b64")) for e in entries] == [
        LINES[0].decode(),
        "",
        "/yBub3QgdXRmLTg=",
        LINES[1].decode(),
        LINES[2].decode(),
    ]
    times = [e["t"] for e in entries]
    assert times == sorted(times) and times[-1] - times[0] >= 0.3  # 10 messages/s
    assert [e.raw for e in read_entries(recording, "record")] == messages

    capsys.readouterr()
    proc, url = start_serve(str(recording), "--timing", "original", "--all-fields")
    try:
        out = tmp_path / "back.jsonl"
        started = time.monotonic()
        assert main(["sample", "--base-url", url, "--limit", "3", "-o", str(out)]) == 0
        took = time.monotonic() - started
    finally:
        stop_serve(proc)
    assert read_lines(out) == [LINES[0], LINES[1], LINES[2]]
    assert took >= 0.25  # the recorded gaps were kept
    assert "1 dropped" in capsys.readouterr().err  # the non-UTF-8 line, replayed as sent


def test_serve_rejects_original_timing_for_plain_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(LINES[0] + b"\n")
    assert main(["serve", str(plain), "--timing", "original"]) == 2
    assert "needs a recording" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing.jsonl")]) == 2


def test_serve_in_process_stops_on_keyboard_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"\n".join(LINES[:3]) + b"\n")
    sleeps = iter([None, None, KeyboardInterrupt()])

    def fake_sleep(seconds: float) -> None:
        item = next(sleeps)
        if isinstance(item, BaseException):
            raise item

    before = set(threading.enumerate())
    monkeypatch.setattr("rxtweet.cli.serve.time.sleep", fake_sleep)
    assert main(["serve", str(plain), "--status", "503", "--times", "2"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("http://127.0.0.1:")
    assert "stopped: served 0 messages over 0 stream connections" in err
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_sample_stops_on_ctrl_c_with_complete_lines(tmp_path: Path) -> None:
    out = tmp_path / "interrupted.jsonl"
    with fake(messages=LINES, bearer_token=TOKEN, default=Attempt(rate=40)) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rxtweet", "sample", "--base-url", server.url, "-o", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and server.sent < 5:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == ExitCode.INTERRUPTED == 130, err
    assert "Traceback" not in err
    assert "; interrupted" in err
    written = read_lines(out)
    assert len(written) >= 1 and written == LINES[: len(written)]


def test_rules_network_error_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with fake() as server:
        url = server.url  # a port that is closed once the server stops
    assert main(["rules", "list", "--base-url", url]) == ExitCode.ERROR
    err = capsys.readouterr().err
    port = url.rsplit(":", 1)[1]
    # Said plainly, not as urllib3's internals (_TrackedHTTPConnection(host=..., port=...)).
    assert f"connection refused by 127.0.0.1:{port}" in err and TOKEN not in err
    assert "HTTPConnection" not in err
