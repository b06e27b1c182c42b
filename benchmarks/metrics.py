"""The cost of an active ``metrics()`` subscription on a stream's throughput (issue 16).

The whole client pipeline runs (the socket aside): reads -> reconnect -> parse -> share ->
``stream.tweets`` subscriber, fed from memory by a transport that hands over 64 KiB reads
(as :class:`rxtweet.transport.RequestsTransport` does), so the metrics' share of the time
is the largest it can be; over a real socket (framing, system calls) it is smaller. Two
payloads: X's default ~200 B (``{"data":{"edit_history_tweet_ids":[..],"id":..,"text":..}}``)
and generated ~1.2 KB tweets with fields and expansions.

Two measures, both with and without ``metrics_of(stream, 1.0)`` subscribed:

* wall time: best of ``--rounds`` alternating runs (this machine's timings swing by 10% or
  more from run to run: read the spread);
* ``--instructions``: instructions per message counted by valgrind (callgrind), which do
  not swing: each case runs under valgrind at two sizes and the difference is divided by
  the difference in messages, so start-up and imports cancel out. Time runs ~50x slower
  under valgrind, so there the interval is longer than the run: what is counted is the
  per-message cost (a snapshot and the first LAG_EXACT exact lags of an interval cost per
  second, ~1 ms a second). Needs ``valgrind``.

    .venv/bin/python benchmarks/metrics.py                  # wall time, 100k messages
    .venv/bin/python benchmarks/metrics.py --instructions   # + instruction counts (~2 min)

Target (issue 16): under 5% of throughput.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import islice
from typing import Any

import orjson
import reactivex
from reactivex.disposable import Disposable

from rxtweet import StreamingClient, Unauthorized
from rxtweet.metrics import metrics_of
from rxtweet.testing import generate_v2_messages

#: Bytes per read handed to the connection (RequestsTransport reads up to 64 KiB at once).
READ_SIZE = 64 * 1024


class MemoryReads:
    """A BatchTransport serving ``lines`` once, in reads of ~64 KiB, then a 401 (the stream
    ends instead of reconnecting)."""

    def __init__(self, lines: list[bytes]) -> None:
        self.reads: list[list[bytes]] = [[]]
        size = 0
        for line in lines:
            if size + len(line) + 2 > READ_SIZE and self.reads[-1]:
                self.reads.append([])
                size = 0
            self.reads[-1].append(line)
            size += len(line) + 2
        self.served = False

    def lines(self, request: Any, options: Any, **_: Any) -> reactivex.Observable[bytes]:
        return reactivex.from_iterable(line for read in self.reads for line in read)

    def batches(self, request: Any, options: Any, **_: Any) -> reactivex.Observable[Any]:
        if self.served:
            return reactivex.throw(Unauthorized(401))
        self.served = True

        def subscribe(observer: Any, scheduler: Any = None) -> Disposable:
            for read in self.reads:
                observer.on_next(read)
            observer.on_completed()
            return Disposable()

        return reactivex.Observable(subscribe)


def payload(name: str, n: int) -> list[bytes]:
    """``n`` lines of the ``default`` (~200 B) or ``fields`` (~1.2 KB) payload."""
    messages = islice(generate_v2_messages(seed=3), n)
    if name == "fields":
        return [orjson.dumps(m) for m in messages]
    return [
        orjson.dumps(
            {
                "data": {
                    "edit_history_tweet_ids": [m["data"]["id"]],
                    "id": m["data"]["id"],
                    "text": m["data"]["text"],
                }
            }
        )
        for m in messages
    ]


def run_once(lines: list[bytes], with_metrics: bool, interval: float = 1.0) -> tuple[float, int]:
    """Seconds to deliver every tweet of ``lines`` to a subscriber; tweets counted."""
    stream = StreamingClient("bench-token", transport=MemoryReads(lines)).sample_stream()
    snapshots: list[object] = []
    metrics = metrics_of(stream, interval).subscribe(snapshots.append) if with_metrics else None
    count = [0]

    def on_tweet(_: object) -> None:
        count[0] += 1

    gc.collect()
    started = time.perf_counter()
    # The transport delivers on the subscribing thread: this returns at the end of the lines.
    subscription = stream.tweets.subscribe(on_tweet, lambda error: None)
    elapsed = time.perf_counter() - started
    subscription.dispose()
    if metrics is not None:
        metrics.dispose()
    return elapsed, count[0]


def wall(name: str, n: int, rounds: int) -> None:
    lines = payload(name, n)
    size = sum(map(len, lines)) / len(lines)
    run_once(lines[:2000], True)  # warm-up
    runs: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(rounds):
        for with_metrics in (False, True) if round_ % 2 == 0 else (True, False):
            elapsed, count = run_once(lines, with_metrics)
            assert count == n, count
            runs[with_metrics].append(elapsed / n * 1e6)
    best = {key: min(values) for key, values in runs.items()}
    print(f"\n{name} payload, {size:.0f} B a message, {n:,} messages, {rounds} rounds (wall)")
    print(f"{'':<20}{'msg/s':>12}{'us/msg':>9}{'spread us/msg':>16}")
    for key, label in ((False, "without metrics"), (True, "with metrics(1.0)")):
        spread = f"{min(runs[key]):.2f}-{max(runs[key]):.2f}"
        print(f"{label:<20}{1e6 / best[key]:>12,.0f}{best[key]:>9.2f}{spread:>16}")
    print(f"overhead (best vs best): {best[True] / best[False] - 1:+.1%}; target < 5%")


def instructions(name: str, small: int, large: int) -> None:
    counts: dict[bool, list[int]] = {False: [], True: []}
    for with_metrics in (False, True):
        for n in (small, large):
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "callgrind.out")
                subprocess.run(
                    [
                        "valgrind",
                        "--tool=callgrind",
                        f"--callgrind-out-file={out}",
                        sys.executable,
                        __file__,
                        "--run-once",
                        name,
                        str(n),
                        "1" if with_metrics else "0",
                    ],
                    check=True,
                    capture_output=True,
                )
                with open(out) as file:
                    total = next(
                        int(line.split()[1])
                        for line in file
                        if line.startswith(("summary:", "totals:"))
                    )
            counts[with_metrics].append(total)
    per = {key: (c[1] - c[0]) / (large - small) for key, c in counts.items()}
    print(f"\n{name} payload: instructions per message (callgrind, {large:,} - {small:,})")
    print(f"without metrics {per[False]:>10,.0f}")
    print(f"with metrics    {per[True]:>10,.0f}   overhead {per[True] / per[False] - 1:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--payloads", default="default,fields")
    parser.add_argument("--instructions", action="store_true", help="also count (valgrind)")
    parser.add_argument("--run-once", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # each run ends with a 401 ("not reconnecting")
    if args.run_once:
        name, n, with_metrics = args.run_once
        lines = payload(name, 30_000)[: int(n)]
        gc.disable()
        # Under valgrind time runs ~50x slower: with a 1 s interval each interval would
        # hold 1/50 of its real messages and the per-interval work (the first LAG_EXACT
        # lags exact, the snapshot) would weigh 50x too much. No tick during the run: the
        # per-message cost alone (a tick costs per second, not per message).
        run_once(lines, with_metrics == "1", interval=3600.0)
        return
    for name in args.payloads.split(","):
        wall(name, args.n, args.rounds)
    if args.instructions:
        if shutil.which("valgrind") is None:
            print("\n--instructions: valgrind is not installed")
            return
        for name in args.payloads.split(","):
            instructions(name, 10_000, 30_000)


if __name__ == "__main__":
    main()
