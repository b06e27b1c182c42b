"""``--metrics-port`` on the stream commands, and lag in the live progress line."""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support import wait_until

from rxtweet.cli import build_parser, main
from rxtweet.metrics import SNOWFLAKE_EPOCH_MS
from rxtweet.testing import Attempt, FakeStreamServer

parser = pytest.importorskip("prometheus_client.parser", reason="needs the 'metrics' extra")

pytestmark = pytest.mark.integration

TOKEN = "AAAAAAAAAAAAAAAAAAAAA-cli-metrics-bearer-token"
#: Every command that streams takes --metrics-port.
STREAM_COMMANDS = (
    ["sample"],
    ["filter"],
    ["record"],
    ["firehose"],
    ["sample10"],
    ["compliance", "tweets"],
    ["likes", "firehose"],
    ["labels"],
    ["activity"],
)


def tweets(ages: list[float]) -> list[dict[str, Any]]:
    """Tweets whose Snowflake ids say they were created ``age`` seconds ago."""
    now = time.time()
    return [
        {"data": {"id": str((round((now - age) * 1000) - SNOWFLAKE_EPOCH_MS) << 22), "text": "t"}}
        for age in ages
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize("command", STREAM_COMMANDS, ids=" ".join)
def test_every_stream_command_takes_metrics_port(command: list[str]) -> None:
    args = build_parser().parse_args([*command, "--metrics-port", "9464"])
    assert args.metrics_port == 9464


def test_metrics_port_is_checked() -> None:
    assert main(["sample", "--metrics-port", "70000"]) == 2


def test_sample_serves_prometheus_metrics_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    port = free_port()
    result: list[int] = []
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    with FakeStreamServer(messages=tweets([2.0] * 8), bearer_token=TOKEN) as server:
        # Five tweets, then silence until the stall timeout; the rest on the reconnect.
        server.script(Attempt(messages=5, ending="stall"))
        argv = [
            "sample",
            "--base-url",
            server.url,
            "-o",
            str(tmp_path / "out.jsonl"),
            "--limit",
            "8",
            "--stall-timeout",
            "0.6",
            "--metrics-port",
            str(port),
        ]
        runner = threading.Thread(target=lambda: result.append(main(argv)))
        runner.start()
        try:
            label = (("stream", "/2/tweets/sample/stream"),)
            messages = ("rxtweet_messages_total", (("partition", ""), *label))

            def five() -> bool:
                try:
                    return scrape(port).get(messages) == 5
                except (urllib.error.URLError, ConnectionError):
                    return False

            assert wait_until(five, timeout=3)
            during = scrape(port)
        finally:
            runner.join(timeout=5)
    assert result == [0]
    assert during[("rxtweet_tweets_total", label)] == 5
    assert during[("rxtweet_connection_state", (("partition", ""), ("state", "connected"), *label))]
    assert during[("rxtweet_lag_seconds_count", label)] == 5
    # The quantiles cover the span since the previous scrape; sum/count the whole run.
    assert 2.0 - 0.01 <= during[("rxtweet_lag_seconds_sum", label)] / 5 < 4.0
    assert {name for name, _ in during} >= {
        "rxtweet_messages_total",
        "rxtweet_bytes_total",
        "rxtweet_keep_alives_total",
        "rxtweet_malformed_total",
        "rxtweet_duplicates_total",
        "rxtweet_overflow_drops_total",
        "rxtweet_lag_seconds_sum",
    }
    assert f"serving Prometheus metrics at http://127.0.0.1:{port}/metrics" in stderr.getvalue()
    with pytest.raises(urllib.error.URLError):  # closed with the run
        scrape(port)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_shows_the_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    with FakeStreamServer(messages=tweets([3.0] * 6), bearer_token=TOKEN) as server:
        server.script(Attempt(messages=3, ending="stall"))
        code = main(
            [
                "sample",
                "--base-url",
                server.url,
                "-o",
                "-",  # a short label: the line is cut to the terminal's width
                "--limit",
                "6",
                "--stall-timeout",
                "0.4",
            ]
        )
    assert code == 0
    assert "lag 3." in tty.getvalue(), repr(tty.getvalue())[:600]
