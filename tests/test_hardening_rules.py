"""Hardening of the v2 rules API and the ``rxtweet rules`` command (issues 10 and 11).

Faults on the wire are played by real servers on 127.0.0.1: :class:`FakeStreamServer` for the
rules endpoint, and :class:`KeepAliveServer` below (``support.RawServer`` answering kept-alive
requests as a test scripts, including resetting the connection) for what FakeStreamServer
will not do.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from support import RawServer, read_head

from rxtweet import RxTweetException, StreamingClient, StreamRule
from rxtweet.cli import build_parser, main
from rxtweet.errors import StreamConnectionError
from rxtweet.reconnect import RATE_LIMIT_RESET_WAIT_MAX
from rxtweet.testing import FakeStreamServer
from rxtweet.v2 import RulesSync, RulesSyncError

TOKEN = "AAAAAAAAAAAAAAAAAAAAAHardeningRulesToken%2Bx%3DAbCdEf"  # a fake token
RULES_PATH = "/2/tweets/search/stream/rules"
PROBLEMS = "https://api.twitter.com/2/problems/"

#: (connection number, request number on it, method, target, body)
Answer = Callable[[int, int, str, str, bytes], "bytes | None"]


def http(status: int, doc: Any, *, headers: dict[str, str] | None = None) -> bytes:
    """An HTTP/1.1 answer with a JSON body that keeps the connection open."""
    body = json.dumps(doc).encode()
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head += [f"Content-Length: {len(body)}", "Connection: keep-alive", "", ""]
    return "\r\n".join(head).encode() + body


class KeepAliveServer(RawServer):
    """HTTP/1.1 with kept-alive connections: ``answer`` gives each request's bytes, or ``None``
    to reset the connection (RST, as a server or middlebox dropping a kept-alive connection
    does). :attr:`requests` records every request, as ``answer`` was called with it."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[int, int, str, str, bytes]] = []
        self._numbers = itertools.count(1)
        super().__init__(self._exchange)

    def _exchange(self, conn: socket.socket, head: bytes) -> None:
        number = next(self._numbers)
        for index in itertools.count(1):
            request_line, *headers = head.decode().split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            length = 0
            for header in headers:
                name, _, value = header.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = b""
            while len(body) < length and (data := conn.recv(length - len(body))):
                body += data
            self.requests.append((number, index, method, target, body))
            out = self.answer(number, index, method, target, body)
            if out is None:  # closed with a zero linger time: RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            conn.sendall(out)
            head = read_head(conn)
            if not head:
                return


def posts(server: KeepAliveServer) -> list[str]:
    """What each POST asked for: ``add``, ``add dry_run`` or ``delete``."""
    kinds = []
    for _, _, method, target, body in server.requests:
        if method == "POST":
            kind = next(iter(json.loads(body)))
            kinds.append(f"{kind} dry_run" if "dry_run=true" in target else kind)
    return kinds


def no_secret(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert "secret@" not in text


# --------------------------------------------------------------------------- credentials


def test_a_bearer_token_with_a_trailing_cr_is_stripped_and_works() -> None:
    # A token file saved with CRLF, read with $(cat file). Before: requests raised
    # InvalidHeader quoting the whole header, token included.
    with FakeStreamServer(bearer_token=TOKEN, rules=[{"value": "cat"}]) as server:
        client = StreamingClient(TOKEN + "\r\n", base_url=server.url, return_type=dict)
        assert [r["value"] for r in client.get_rules()["data"]] == ["cat"]
    with pytest.raises(ValueError, match="control character at position 5") as caught:
        StreamingClient("AAAA\x1bBBBB")
    assert "AAAA" not in str(caught.value)


def test_rules_on_a_dead_port_raise_stream_connection_error_without_secrets() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connection refused
    client = StreamingClient(TOKEN, base_url=f"http://user:secret@127.0.0.1:{port}")
    calls: list[Callable[[], Any]] = [client.get_rules, lambda: client.add_rules(StreamRule("x"))]
    for call in calls:
        with pytest.raises(StreamConnectionError) as caught:
            call()
        error = caught.value
        assert isinstance(error, RxTweetException)
        assert error.cause is not None
        assert "refused" in str(error).lower()
        assert f"127.0.0.1:{port}" in str(error)
        no_secret(str(error), repr(error))


def test_a_reset_of_a_kept_alive_connection_is_retried_once() -> None:
    doc = {"data": [{"id": "1", "value": "cat"}], "meta": {"sent": "x", "result_count": 1}}

    def answer(conn: int, index: int, method: str, target: str, body: bytes) -> bytes | None:
        # The second request on the first connection finds it dropped.
        return None if (conn, index) == (1, 2) else http(200, doc)

    with KeepAliveServer(answer) as server:
        client = StreamingClient(TOKEN, base_url=server.url, return_type=dict)
        assert client.get_rules()["data"][0]["value"] == "cat"
        assert client.get_rules()["data"][0]["value"] == "cat"  # before: ConnectionError
        assert [(c, i) for c, i, *_ in server.requests] == [(1, 1), (1, 2), (2, 1)]


def test_a_server_that_always_resets_is_retried_once_then_a_typed_error() -> None:
    with KeepAliveServer(lambda *_args: None) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        with pytest.raises(StreamConnectionError) as caught:
            client.get_rules()
        assert len(server.requests) == 2
        no_secret(str(caught.value))


# --------------------------------------------------------------------------- rate-limit wait


def test_a_far_future_rate_limit_reset_waits_at_most_an_hour_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "https://api.x.com/2/tweets/search/stream/rules"
    reset = str(int(time.time()) + 10**9)
    client = StreamingClient(TOKEN, wait_on_rate_limit=True, return_type=dict)
    waits: list[float] = []
    client._sleep = waits.append  # type: ignore[method-assign,assignment]
    with responses.RequestsMock() as mocked, caplog.at_level(logging.INFO, logger="rxtweet.v2"):
        mocked.get(url, json={"title": "Too Many Requests"}, status=429,
                   headers={"x-rate-limit-reset": reset})  # fmt: skip
        mocked.get(url, json={"meta": {"result_count": 0}}, status=200)
        assert client.get_rules() == {"meta": {"result_count": 0}}
    assert waits == [RATE_LIMIT_RESET_WAIT_MAX] == [3600.0]  # before: 10**9 + 1
    assert "3600 seconds" in caplog.text


# --------------------------------------------------------------------------- sync_rules


def test_sync_rules_adds_before_it_deletes_and_returns_the_diff() -> None:
    start = [{"value": "keep", "tag": "k"}, {"value": "old"}, {"value": "retag", "tag": "a"}]
    with FakeStreamServer(bearer_token=TOKEN, rules=start) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        wanted: list[StreamRule | str] = [StreamRule("keep", "k"), StreamRule("retag", "b"), "new"]
        plan = client.sync_rules(wanted, dry_run=True)
        assert plan.dry_run and len(server.rules) == 3
        assert [r.value for r in plan.added] == ["retag", "new"]

        before = len(server.requests)
        result = client.sync_rules(wanted)
        assert isinstance(result, RulesSync) and not result.dry_run
        assert [(r.value, r.tag) for r in result.added] == [("retag", "b"), ("new", None)]
        assert all(r.id for r in result.added)
        assert [(r.value, r.tag) for r in result.deleted] == [("old", None), ("retag", "a")]
        assert [r.value for r in result.unchanged] == ["keep"]
        assert sorted((r["value"], r.get("tag")) for r in server.rules.values()) == [
            ("keep", "k"),
            ("new", None),
            ("retag", "b"),
        ]
        steps = [
            ("dry_run" if r.query.get("dry_run") == ["true"] else "")
            + (next(iter(json.loads(r.body))) if r.body else "")
            for r in server.requests[before:]
            if r.method == "POST"
        ]
        # Validate, add the new rule, delete the old ones, re-add the retagged one last.
        assert steps == ["dry_runadd", "add", "delete", "add"]
        assert not client.sync_rules(wanted).changed  # idempotent


def test_sync_rules_refuses_an_empty_set_unless_explicit() -> None:
    with FakeStreamServer(bearer_token=TOKEN, rules=[{"value": "a"}, {"value": "b"}]) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        with pytest.raises(ValueError, match="allow_empty=True"):
            client.sync_rules([])
        assert len(server.rules) == 2 and not server.requests
        result = client.sync_rules([], allow_empty=True)
        assert [r.value for r in result.deleted] == ["a", "b"] and server.rules == {}


def test_sync_rules_invalid_addition_changes_nothing_and_keeps_the_details() -> None:
    with FakeStreamServer(bearer_token=TOKEN, rules=[{"value": "old"}]) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        with pytest.raises(RulesSyncError) as caught:
            client.sync_rules(["fine", "x" * 600])
        error = caught.value
        assert "nothing was changed" in str(error)
        assert "Rule length is 600" in str(error)  # X's per-rule details
        assert error.added == () and error.deleted == ()
        assert [r.value for r in error.not_deleted] == ["old"]
        assert [r["value"] for r in server.rules.values()] == ["old"]


def _rules_server(fail: str) -> KeepAliveServer:
    """Rules endpoint with one rule ``old``; the step named by ``fail`` breaks."""
    current = {"data": [{"id": "7", "value": "old"}], "meta": {"result_count": 1}}
    created = {"data": [{"id": "8", "value": "new"}], "meta": {"summary": {"created": 1}}}

    def answer(conn: int, index: int, method: str, target: str, body: bytes) -> bytes | None:
        if method == "GET":
            return http(200, current)
        kind = next(iter(json.loads(body)))
        if "dry_run=true" in target:
            return http(200, created)
        if kind == fail == "add":
            return None  # the add never arrives: the network fails
        if kind == fail == "delete":
            return http(503, {"title": "Service Unavailable", "detail": "try later"})
        return http(200, created if kind == "add" else {"meta": {"summary": {"deleted": 1}}})

    return KeepAliveServer(answer)


def _sync_new_rule(fail: str) -> tuple[RulesSyncError, KeepAliveServer]:
    """``sync_rules(["new"])`` against ``_rules_server(fail)``: the error raised, the server."""
    with _rules_server(fail) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        with pytest.raises(RulesSyncError) as caught:
            client.sync_rules(["new"])
    return caught.value, server


def test_sync_rules_when_the_add_fails_deletes_nothing_and_says_so() -> None:
    error, server = _sync_new_rule(fail="add")
    assert isinstance(error.cause, StreamConnectionError)
    assert error.added == () and error.deleted == ()
    assert [r.value for r in error.not_added] == ["new"]
    assert [r.value for r in error.not_deleted] == ["old"]
    assert "delete" not in posts(server)  # before (CLI): the old rule was gone first
    assert "nothing was changed" in str(error)


def test_sync_rules_when_the_delete_fails_reports_the_partial_result() -> None:
    error, _ = _sync_new_rule(fail="delete")
    assert [(r.value, r.id) for r in error.added] == [("new", "8")]
    assert [r.value for r in error.not_deleted] == ["old"]
    assert "applied: add 'new'" in str(error)
    assert "not applied: delete 'old'" in str(error)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    for name in ("NO_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "is empty"),
        ('{"rules": [{"value": "a"}]}', 'without a "data" list'),
        ('{"value": "a"}', 'without a "data" list'),
        ("[]", "holds no rules"),
        ("[1, 2]", "rule 1 is not an object"),
    ],
)
def test_rules_sync_refuses_empty_or_wrong_shaped_files(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, complaint: str
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(text)
    with FakeStreamServer(bearer_token=TOKEN, rules=[{"value": "a"}, {"value": "b"}]) as server:
        assert main(["rules", "sync", str(path), "--base-url", server.url]) == 3
        assert len(server.rules) == 2  # before: every rule deleted, exit 0
    err = capsys.readouterr().err
    assert complaint in err
    assert "a JSON list of rules" in err and '{"data": [...]}' in err


def test_rules_sync_dev_null_on_stdin_needs_allow_empty(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeStreamServer(bearer_token=TOKEN, rules=[{"value": "a"}]) as server:
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        assert main(["rules", "sync", "-", "--base-url", server.url]) == 3
        assert len(server.rules) == 1
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        assert main(["rules", "sync", "-", "--allow-empty", "--base-url", server.url]) == 0
        assert server.rules == {}
    assert "0 added, 1 removed, 0 kept" in capsys.readouterr().err


def _sync_cli_new_rule(tmp_path: Path, fail: str) -> KeepAliveServer:
    """``rxtweet rules sync`` of a file holding ``new`` against ``_rules_server(fail)``."""
    path = tmp_path / "rules.txt"
    path.write_text("new\n")
    with _rules_server(fail) as server:
        assert main(["rules", "sync", str(path), "--base-url", server.url]) == 1
    return server


def test_rules_sync_cli_when_the_add_fails_keeps_the_old_rules(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = _sync_cli_new_rule(tmp_path, fail="add")
    assert "delete" not in posts(server)
    err = capsys.readouterr().err
    assert "nothing changed" in err
    no_secret(err)


def test_rules_sync_cli_partial_failure_lists_what_was_and_was_not_applied(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _sync_cli_new_rule(tmp_path, fail="delete")
    err = capsys.readouterr().err
    assert "applied: + new  (id 8)" in err
    assert "NOT applied: - old  (id 7)" in err
    assert "stopped part-way" in err


def test_rules_add_422_exits_3_with_the_per_rule_details(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = {
        "errors": [
            {
                "value": "--b",
                "details": ["Rules must contain a non-negation term (at position 1)"],
                "title": "UnprocessableEntity",
                "type": PROBLEMS + "invalid-rules",
            }
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
    }
    for status in (400, 422):
        with KeepAliveServer(lambda *_, s=status: http(s, problem)) as server:
            assert main(["rules", "add", "--base-url", server.url, "--", "--b"]) == 3
        err = capsys.readouterr().err
        assert "non-negation term (at position 1)" in err, err


def test_rules_delete_accepts_values_as_well_as_ids(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    start = [{"value": "cat has:images"}, {"value": "dog"}, {"value": "emu"}]
    with FakeStreamServer(bearer_token=TOKEN, rules=start) as server:
        dog = next(i for i, r in server.rules.items() if r["value"] == "dog")
        base = ["--base-url", server.url]
        assert main(["rules", "delete", "cat has:images", dog, *base]) == 0
        assert [r["value"] for r in server.rules.values()] == ["emu"]
        assert main(["rules", "delete", "no such rule", *base]) == 3
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("- cat has:images  (id ")
    assert "no rule with value 'no such rule'" in captured.err


def test_rules_help_lists_no_oauth1_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("list", "add", "delete", "sync"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["rules", action, "--help"])
        out = capsys.readouterr().out
        assert "--bearer-token" in out and "--base-url" in out
        assert "--consumer-key" not in out and "--access-token" not in out


def test_a_401_on_rules_list_names_the_rules_endpoint(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeStreamServer(bearer_token="another-token-entirely") as server:
        assert main(["rules", "list", "--base-url", server.url]) == 4
    err = capsys.readouterr().err
    assert "the rules endpoint refused the bearer token" in err
    assert "the stream refused" not in err
    no_secret(err)


def test_rule_values_and_tags_are_printed_with_control_characters_escaped(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = [{"value": "cat \x1b]0;pwned\x07", "tag": "t\x1b[2J"}]
    with FakeStreamServer(bearer_token=TOKEN, rules=hostile) as server:
        assert main(["rules", "list", "--base-url", server.url]) == 0
        assert main(["rules", "delete", "--all", "--dry-run", "--base-url", server.url]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "\x07" not in captured.out
    assert "\\x1b]0;pwned\\x07" in captured.out


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and not t.daemon]
        if not left:
            return
        time.sleep(0.01)
    raise AssertionError(f"threads left running: {left}")
