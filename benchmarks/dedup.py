"""What de-duplication costs: time per message, and the window's memory over a long run.

```sh
. .venv/bin/activate
python benchmarks/dedup.py            # about 1 minute
python benchmarks/dedup.py --quick    # about 15 s
```

**Cost per message.** Real v2 messages (the 8 tweets of
``../shared/data/real/v2/twarc-csv_streaming_output.jsonl`` with their ``includes``, and the
70 short ``twitter-dart_sample_stream.jsonl`` tweets), each given a unique tweet id, go
through rxtweet's whole pipeline in one thread, without a socket: a
:class:`~rxtweet.testing.MockTransport` answers with the pre-built lines, and a
:class:`~rxtweet.connection.Connection` reconnects, parses (``to_stream_response``) and
shares them, as a single connection does. The same lines are read through ``conn.items``
(baseline) and through ``Deduplicated(conn, identity_for("tweets")).items``; the difference
per message is what de-duplication adds (best of ``--repeat`` runs each, interleaved; the
spread is best..worst). A third run sends every message twice (``redundancy=2``'s worst
case): its cost is per message received. Target (issue 14): under 1 us/msg added.

**Memory.** A :class:`~rxtweet.recovery.dedup.DedupWindow` fed 1,000,000 fresh 19-digit
tweet ids (new ``str`` objects, as the parser makes them) under a fake clock, with
``tracemalloc`` sampled every 100,000: once with the defaults (360 s, 2M keys) at 1,000
messages/s (the time bound fills at 360,000 keys), once with ``max_items=250_000`` at the
full firehose's 6,000/s (the count bound). Both must be flat once full.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import reactivex

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rxtweet.connection import Connection  # noqa: E402
from rxtweet.http import StreamRequest  # noqa: E402
from rxtweet.recovery.dedup import Deduplicated, DedupWindow  # noqa: E402
from rxtweet.testing import MockTransport  # noqa: E402
from rxtweet.v2.convert import to_stream_response  # noqa: E402
from rxtweet.v2.identity import identity_for  # noqa: E402

REAL = HERE.parent.parent / "shared" / "data" / "real" / "v2"
FIRST_ID = 1528053368912060423


def real_messages() -> list[dict[str, Any]]:
    """The real v2 tweet messages, without twarc's ``__twarc`` and ``matching_rules``."""
    docs: list[dict[str, Any]] = []
    for name in ("twarc-csv_streaming_output.jsonl", "twitter-dart_sample_stream.jsonl"):
        for line in (REAL / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            if "data" not in doc:
                continue  # the operational-disconnect
            doc.pop("__twarc", None)
            doc.pop("matching_rules", None)
            docs.append(doc)
    return docs


def unique_lines(count: int) -> list[bytes]:
    """``count`` lines cycling through the real messages, each with its own tweet id."""
    docs = real_messages()
    parts: list[tuple[bytes, bytes]] = []
    for doc in docs:
        doc["data"] = {"id": "", **{k: v for k, v in doc["data"].items() if k != "id"}}
        line = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        head, tail = line.split(b'"id":""', 1)  # the tweet's id: the first "id" of data
        parts.append((head + b'"id":"', b'"' + tail))
    return [
        b"%b%d%b" % (head, FIRST_ID + i, tail)
        for i, (head, tail) in ((i, parts[i % len(parts)]) for i in range(count))
    ]


def run(lines: list[bytes], dedup: bool) -> tuple[float, int]:
    """Seconds to read every line through the pipeline, and the messages delivered."""
    # Once, then silence: a clean end would make the connection reconnect and read it again.
    answers = iter([reactivex.from_iterable(lines)])
    transport = MockTransport(lambda request: next(answers, reactivex.never()))
    connection = Connection(
        StreamRequest("GET", "http://mock/2/tweets/sample/stream"),
        to_stream_response,
        transport=transport,
    )
    source: Any = Deduplicated(connection, identity_for("tweets")) if dedup else connection
    count = [0]

    def on_next(item: Any) -> None:
        count[0] += 1

    gc.collect()
    started = time.perf_counter()
    source.items.subscribe(on_next).dispose()
    elapsed = time.perf_counter() - started
    return elapsed, count[0]


def cost(messages: int, repeat: int) -> None:
    lines = unique_lines(messages)
    doubled = [line for line in lines for _ in range(2)]
    mean_size = sum(map(len, lines)) / len(lines)
    print(
        f"cost per message: {messages:,} unique real v2 tweets ({mean_size:,.0f} B mean), "
        f"best of {repeat}"
    )
    plain: list[float] = []
    deduped: list[float] = []
    twice: list[float] = []
    for _ in range(repeat):
        seconds, delivered = run(lines, dedup=False)
        plain.append(seconds / messages)
        seconds, delivered_dedup = run(lines, dedup=True)
        deduped.append(seconds / messages)
        # Events: Connected + Disconnected; every message is new, so all pass.
        assert delivered_dedup == delivered, (delivered_dedup, delivered)
        seconds, delivered_twice = run(doubled, dedup=True)
        twice.append(seconds / len(doubled))
        assert delivered_twice == delivered, (delivered_twice, delivered)

    def us(values: list[float]) -> str:
        low, high = min(values) * 1e6, max(values) * 1e6
        return f"{low:6.2f} us/msg (spread {low:.2f}..{high:.2f})"

    print(f"  pipeline alone              {us(plain)}")
    print(f"  pipeline + Deduplicated     {us(deduped)}")
    print(f"  every message twice (dedup) {us(twice)}  per message received")
    added = [d - p for d, p in zip(deduped, plain, strict=True)]
    best = min(deduped) - min(plain)
    print(
        f"  added by de-duplication     {best * 1e6:6.3f} us/msg (best minus best; "
        f"pairwise median {statistics.median(added) * 1e6:.3f} us)  "
        f"{'[met]' if best < 1e-6 else '[MISSED]'} target < 1 us"
    )
    print(
        f"  single-connection rate      {1 / min(plain):,.0f} msg/s alone, "
        f"{1 / min(deduped):,.0f} msg/s de-duplicated"
    )

    # The de-duplication alone (key + window), without the pipeline around it.
    responses = [to_stream_response(json.loads(line)) for line in lines]
    identity = identity_for("tweets")
    best_raw = float("inf")
    for _ in range(repeat):
        window = DedupWindow()
        seen = window.seen
        started = time.perf_counter()
        for response in responses:
            seen(identity(response))
        best_raw = min(best_raw, (time.perf_counter() - started) / messages)
    print(f"  identity + window.seen only {best_raw * 1e6:6.3f} us/msg")


def fresh_ids(count: int, start: int) -> list[str]:
    return [str(FIRST_ID + start + i) for i in range(count)]


def memory(total: int, step: int, *, rate: float, **bounds: Any) -> None:
    now = [0.0]
    window = DedupWindow(clock=lambda: now[0], **bounds)
    print(
        f"memory: {total:,} fresh tweet ids at {rate:,.0f}/s, "
        f"window={window.window:g} s, max_items={window.max_items:,}"
    )
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    samples: list[int] = []
    for done in range(0, total, step):
        for key in fresh_ids(step, done):
            now[0] += 1 / rate
            window.seen(key)
        current = tracemalloc.get_traced_memory()[0] - base
        samples.append(current)
        print(
            f"  {done + step:>9,} messages  {len(window):>9,} keys  "
            f"{current / 2**20:8.1f} MiB  {current / max(1, len(window)):6.1f} B/key"
        )
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    full = [
        s
        for s, n in zip(samples, range(step, total + 1, step), strict=False)
        if n >= min(window.max_items, rate * window.window) + step
    ]
    if full:
        growth = (max(full) - min(full)) / min(full)
        print(
            f"  once full: {min(full) / 2**20:.1f}..{max(full) / 2**20:.1f} MiB "
            f"({growth:+.1%} spread), peak {peak / 2**20:.1f} MiB  "
            f"{'[flat]' if growth < 0.1 else '[GROWS]'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memory-messages", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repeats")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.repeat = 50_000, 3
    print(f"Python {sys.version.split()[0]} on {sys.platform}")
    cost(args.messages, args.repeat)
    print()
    memory(args.memory_messages, 100_000, rate=1_000.0)
    print()
    memory(args.memory_messages, 100_000, rate=6_000.0, max_items=250_000)


if __name__ == "__main__":
    main()
