"""Issue 12 on the command line: command specs, ``--metadata`` (twarc's provenance key) and
``--log FILE``, against a real local server."""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest

from rxtweet import __version__
from rxtweet.cli import COMMANDS, build_parser, main
from rxtweet.cli.common import Redactor
from rxtweet.cli.logfile import log_file_handler
from rxtweet.cli.stream import _Metadata, with_metadata
from rxtweet.http import StreamRequest
from rxtweet.testing import Attempt, FakeStreamServer, generate_v2_messages

pytestmark = pytest.mark.integration

TOKEN = "AAAAAAAAAAAAAAAAAAAAA-issue12-cli-token"
LINES = [orjson.dumps(m) for m in islice(generate_v2_messages(seed=12), 20)]
TWARC = Path(__file__).parent / "data" / "twarc-csv_streaming_output.jsonl"
UTC_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) ")


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def fake(**kwargs: Any) -> FakeStreamServer:
    return FakeStreamServer(**{"fields": "all", "match_rules": False, **kwargs})


# --- command specs --------------------------------------------------------------------------


def test_each_command_module_declares_its_spec_in_help_order() -> None:
    assert [c.name for c in COMMANDS] == [
        *("demo", "sample", "filter", "record", "rules"),
        *("firehose", "sample10", "compliance", "likes", "labels", "activity", "serve"),
        *("consume", "nats-server"),
    ]
    parser = build_parser()
    args = parser.parse_args(["record", "filter", "--limit", "2"])
    assert args.run is COMMANDS[3].run and args.endpoint == "filter"
    rules = parser.parse_args(["rules", "list", "--bearer-token", "T" * 8])
    assert rules.run is COMMANDS[4].run and rules.bearer_token == "T" * 8


def test_stall_timeout_help_states_the_clients_own_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rxtweet.v1 import DEFAULT_STALL_TIMEOUT as V1_DEFAULT
    from rxtweet.v2 import DEFAULT_STALL_TIMEOUT as V2_DEFAULT

    assert main(["sample", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {V2_DEFAULT:g} for v2, {V1_DEFAULT:g} for v1.1)" in text


# --- --metadata -----------------------------------------------------------------------------


def test_metadata_adds_twarcs_key_and_keeps_every_byte_x_sent(tmp_path: Path) -> None:
    out = tmp_path / "tweets.jsonl"
    before = datetime.now(UTC).replace(microsecond=0)
    with fake(messages=LINES) as server:
        # userinfo in the base URL (a proxy's, say): never in the written metadata.
        url = server.url.replace("http://", "http://user:s3cret-pw@")
        argv = ["sample", "--base-url", url, "--limit", "5", "--tweet-fields", "lang"]
        assert main([*argv, "--metadata", "-q", "-o", str(out)]) == 0
    after = datetime.now(UTC)
    written = out.read_bytes().splitlines()
    assert len(written) == 5
    port = server.url.rsplit(":", 1)[1]
    for line, sent in zip(written, LINES, strict=False):
        assert line.startswith(sent[:-1]) and line.endswith(b"}}")  # the original bytes first
        doc = orjson.loads(line)
        meta = doc.pop("__twarc")
        assert doc == orjson.loads(sent)
        assert meta["url"] == (
            f"http://<redacted>@127.0.0.1:{port}/2/tweets/sample/stream?tweet.fields=lang"
        )
        assert meta["version"] == f"rxtweet {__version__}"
        retrieved = datetime.fromisoformat(meta["retrieved_at"])
        assert retrieved.utcoffset() is not None and retrieved.utcoffset().total_seconds() == 0
        assert before <= retrieved <= after
    assert b"s3cret-pw" not in out.read_bytes()
    # The shape twarc writes (and twarc-csv reads): same keys, same timestamp form.
    twarc_meta = orjson.loads(TWARC.read_bytes().splitlines()[0])["__twarc"]
    assert set(twarc_meta) <= set(meta)
    assert len(meta["retrieved_at"]) == len(twarc_meta["retrieved_at"])


def test_without_metadata_lines_are_written_as_received(tmp_path: Path) -> None:
    out = tmp_path / "tweets.jsonl"
    with fake(messages=LINES) as server:
        assert main(["sample", "--base-url", server.url, "--limit", "3", "-q", "-o", str(out)]) == 0
    assert out.read_bytes() == b"".join(line + b"\n" for line in LINES[:3])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a":1}', b'{"a":1,"__twarc":{"m":1}}'),
        (b"{}", b'{"__twarc":{"m":1}}'),
        (b"{ }", b'{"__twarc":{"m":1}}'),
        (b'{"a":1} \t', b'{"a":1,"__twarc":{"m":1}}'),
        (b'{"a":{"b":{}} }', b'{"a":{"b":{}},"__twarc":{"m":1}}'),
    ],
)
def test_with_metadata_edits_only_the_closing_brace(raw: bytes, expected: bytes) -> None:
    result = with_metadata(raw, b'{"m":1}')
    assert result == expected
    assert orjson.loads(result)["__twarc"] == {"m": 1}


def test_metadata_bytes_are_built_once_per_second() -> None:
    metadata = _Metadata(StreamRequest("GET", "https://api.x.com/2/tweets/sample/stream"))
    first = metadata.at(1_617_292_362.1)
    assert metadata.at(1_617_292_362.9) is first
    later = metadata.at(1_617_292_363.0)
    assert later is not first
    assert orjson.loads(first)["retrieved_at"] == "2021-04-01T15:52:42+00:00"
    assert orjson.loads(later)["retrieved_at"] == "2021-04-01T15:52:43+00:00"


def test_record_has_no_metadata_option(capsys: pytest.CaptureFixture[str]) -> None:
    # A recording keeps lines exactly as received: provenance is its header's business.
    assert main(["record", "--metadata"]) == 2
    assert "--metadata" in capsys.readouterr().err


# --- --log FILE -----------------------------------------------------------------------------


def test_log_file_gets_the_library_records_the_terminal_leaves_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "collect.log"
    with fake(messages=LINES) as server:
        server.script(Attempt(messages=2, ending="close"))
        argv = ["sample", "--base-url", server.url, "--limit", "4", "-o", os.devnull]
        assert main([*argv, "--log", str(log_path)]) == 0
    text = log_path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines and all(UTC_LOG_LINE.match(line) for line in lines)
    # The reconnect after the server closed: INFO, from the library's own logger.
    assert any(" INFO rxtweet.reconnect: reconnecting in " in line for line in lines)
    assert TOKEN not in text
    # The terminal shows its own short notice instead, not the library's record.
    err = capsys.readouterr().err
    assert "reconnect #1" in err and "rxtweet.reconnect" not in err
    assert not logging.getLogger().handlers or all(
        getattr(h, "baseFilename", None) != str(log_path) for h in logging.getLogger().handlers
    )


def test_log_file_redacts_and_survives_rotation(tmp_path: Path) -> None:
    redactor = Redactor()
    redactor.add("s3cret-value")
    path = tmp_path / "rxtweet.log"
    handler = log_file_handler(str(path), redactor, verbose=False)
    logger = logging.getLogger("rxtweet.test_issue12_log")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.debug("not at INFO without -v")
        logger.info("token s3cret-value via http://u:pw@host/ and \x1b[31m")
        os.rename(path, tmp_path / "rxtweet.log.1")  # what logrotate does
        logger.warning("after the rotation")
    finally:
        logger.removeHandler(handler)
        handler.close()
    rotated = (tmp_path / "rxtweet.log.1").read_text(encoding="utf-8")
    assert "s3cret-value" not in rotated and "u:pw@" not in rotated
    assert "token <redacted> via http://<redacted>@host/" in rotated
    assert "\x1b" not in rotated and "not at INFO" not in rotated
    fresh = path.read_text(encoding="utf-8")
    assert (
        fresh.count("\n") == 1 and "WARNING rxtweet.test_issue12_log: after the rotation" in fresh
    )


def test_an_unwritable_log_file_is_a_plain_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir" / "x.log"
    assert main(["sample", "--log", str(missing), "-o", os.devnull]) == 1
    err = capsys.readouterr().err
    assert f"cannot open the log file {missing}" in err and "Traceback" not in err
