"""The cost of an active ``metrics()`` subscription on a stream's throughput.

The whole client pipeline runs (framing aside): lines -> reconnect -> parse -> share ->
``stream.tweets`` subscriber, fed from memory by :class:`rxtweet.testing.MockTransport`
(no socket: the pipeline's own cost is what is measured, so the metrics' share of it is
the largest it can be; over a real socket it is smaller). Each round streams N real-shaped
v2 tweets twice, without and with ``metrics_of(stream, 0.1)`` subscribed, alternating
which goes first; the table shows the best of the rounds and the overhead.

    .venv/bin/python benchmarks/metrics.py            # 100k messages, 5 rounds
    .venv/bin/python benchmarks/metrics.py -n 20000 --rounds 3

Target (issue 16): under 5% of throughput.
"""

from __future__ import annotations

import argparse
import gc
import time
from itertools import islice

import orjson
import reactivex

from rxtweet import StreamingClient, Unauthorized
from rxtweet.metrics import metrics_of
from rxtweet.testing import MockTransport, generate_v2_messages


def run_once(lines: list[bytes], with_metrics: bool) -> tuple[float, int]:
    """Seconds to deliver every tweet of ``lines`` to a subscriber; tweets counted."""
    attempts = [0]

    def answer(request: object) -> reactivex.Observable[bytes] | Unauthorized:
        # The lines once; then a fatal 401, so the stream ends instead of reconnecting.
        attempts[0] += 1
        return reactivex.from_iterable(lines) if attempts[0] == 1 else Unauthorized(401)

    transport = MockTransport(answer)
    stream = StreamingClient("bench-token", transport=transport).sample_stream()
    snapshots: list[object] = []
    metrics = metrics_of(stream, 0.1).subscribe(snapshots.append) if with_metrics else None
    count = [0]

    def on_tweet(_: object) -> None:
        count[0] += 1

    gc.collect()
    started = time.perf_counter()
    # MockTransport delivers on the subscribing thread: this returns at the end of the lines.
    subscription = stream.tweets.subscribe(on_tweet, lambda error: None)
    elapsed = time.perf_counter() - started
    subscription.dispose()
    if metrics is not None:
        metrics.dispose()
    return elapsed, count[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    lines = [orjson.dumps(m) for m in islice(generate_v2_messages(seed=3), args.n)]
    size = sum(map(len, lines)) / len(lines)
    print(f"{args.n:,} v2 messages, {size:.0f} bytes on average, {args.rounds} rounds")
    run_once(lines[:2000], True)  # warm-up
    best = {False: float("inf"), True: float("inf")}
    for round_ in range(args.rounds):
        for with_metrics in (False, True) if round_ % 2 == 0 else (True, False):
            elapsed, count = run_once(lines, with_metrics)
            assert count == args.n, count
            best[with_metrics] = min(best[with_metrics], elapsed)
    print(f"{'':<22}{'msg/s':>12}{'us/msg':>10}")
    for with_metrics, name in ((False, "without metrics"), (True, "with metrics(0.1)")):
        seconds = best[with_metrics]
        print(f"{name:<22}{args.n / seconds:>12,.0f}{seconds / args.n * 1e6:>10.2f}")
    overhead = best[True] / best[False] - 1
    added = (best[True] - best[False]) / args.n * 1e6
    print(f"overhead: {overhead:+.1%} of the time per message ({added:+.2f} us/msg); target < 5%")


if __name__ == "__main__":
    main()
