"""``rxtweet demo``: offline, faults injected, summary printed, nothing left running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from rxtweet.cli import main
from rxtweet.cli.demo import demo_policy

pytestmark = pytest.mark.integration


def summary_number(out: str, label: str) -> int:
    match = re.search(rf"^  {label}\s+(\d+)", out, re.MULTILINE)
    assert match, f"no {label!r} line in the summary:\n{out}"
    return int(match.group(1))


def test_demo_shows_tweets_reconnects_and_drops_and_cleans_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = set(threading.enumerate())
    started = time.monotonic()
    assert main(["demo", "--seconds", "3", "--rate", "30", "--seed", "5"]) == 0
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert 3 <= took < 8
    summary = out[out.index("\nsummary\n") :]
    assert summary_number(summary, "tweets") > 0
    assert summary_number(summary, "reconnects") >= 1
    assert summary_number(summary, "dropped") >= 1
    assert "HTTP 503 Service Unavailable" in out
    assert "truncated JSON" in summary
    # The fake server sends only requested fields, as X: the demo asks for lang and entities.
    languages = re.search(r"^  languages\s+(.*)$", summary, re.MULTILINE)
    assert languages and "en " in languages.group(1) and "und" not in languages.group(1)
    assert re.search(r"^  hashtags\s+#", summary, re.MULTILINE)
    # Not a terminal: plain lines, no ANSI escapes.
    assert "\x1b" not in out and "\r" not in out
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leftover:
            break
        time.sleep(0.05)
    assert leftover == []


def test_demo_policy_scales_x_guidance() -> None:
    policy = demo_policy(0.1)
    assert policy.http_wait_start == pytest.approx(0.5)
    assert policy.network_wait_step == pytest.approx(0.025)
    assert policy.rate_limit_wait_start == pytest.approx(6.0)


def test_demo_rejects_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--seconds", "0"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_demo_forever_stops_cleanly_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxtweet", "demo", "--forever", "--rate", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until it streams
        if "connected" in line:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        rest, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in rest
    assert "\nsummary\n" in rest
    assert summary_number(rest, "tweets") > 0
