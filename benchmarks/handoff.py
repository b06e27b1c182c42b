"""observe_on_bounded vs RxPY's observe_on: the cost each adds per stream message.

```sh
. .venv/bin/activate
python benchmarks/handoff.py            # about 1.5 minutes
python benchmarks/handoff.py --quick    # 20k messages, 3 rounds
```

What is timed: a producer thread (a stream reader's role) pushes N parsed v2 messages
(``Parsed`` items of :func:`rxtweet.testing.generate_v2_messages`, parsed once, untimed)
into a ``Subject``; a counting observer receives them. The time runs from the first push to
the observer's ``on_completed`` (every message delivered), so it includes the hand-off to
the consumer thread and the consumer's drain, end to end. Each hand-off is timed against the
same run with the observer subscribed directly (``direct``): the figure reported is the
time *added* per message, ``(t - t_direct) / N``, best of ``--rounds``, with the spread of
the rounds (``max - min``, in the same unit).

Hand-offs, each on a fresh scheduler of the kind named:

* ``bounded/pool``: ``observe_on_bounded(ThreadPoolScheduler(1), capacity=N)`` (never full:
  the pure cost of the hand-off; the policy does not matter until it is full);
* ``bounded/pool cap=1000 block``: the producer waits for room (back-pressure);
* ``bounded/eventloop``: on an ``EventLoopScheduler``;
* ``observe_on/pool`` and ``observe_on/eventloop``: RxPY's ``ops.observe_on`` on the same
  schedulers (a list popped from its head, one scheduled action per item; on a
  ``ThreadPoolScheduler`` each action builds an ``EventLoopScheduler``).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_machine
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.scheduler import EventLoopScheduler, ThreadPoolScheduler
from reactivex.subject import Subject

from rxtweet.operators.observe_on_bounded import observe_on_bounded
from rxtweet.parse import Parsed, decode
from rxtweet.testing import generate_v2_messages
from rxtweet.v2.convert import to_stream_response

Operator = Callable[[Observable[Any]], Observable[Any]] | None
#: A hand-off under test: (name, make() -> (operator or None, cleanup)).
Case = tuple[str, Callable[[int], tuple[Operator, Callable[[], None]]]]


def messages(n: int) -> list[Parsed[Any]]:
    """N parsed stream messages (70 distinct ones generated, repeated)."""
    import orjson

    distinct = [orjson.dumps(m) for m in itertools.islice(generate_v2_messages(seed=3), 70)]
    parsed = []
    for line in itertools.islice(itertools.cycle(distinct), n):
        doc = decode(line)
        assert isinstance(doc, dict)
        parsed.append(Parsed(to_stream_response(doc), line))
    return parsed


def run_once(items: list[Parsed[Any]], operator: Operator) -> float:
    """Seconds from the first push to the observer's completion."""
    source: Subject[Any] = Subject()
    done = threading.Event()
    received = [0]

    def on_next(_: Any) -> None:
        received[0] += 1

    observable = source if operator is None else source.pipe(operator)
    subscription = observable.subscribe(on_next, lambda e: done.set(), done.set)
    timing: list[float] = []

    def produce() -> None:
        push = source.on_next
        start = time.perf_counter()
        for item in items:
            push(item)
        source.on_completed()
        assert done.wait(600)
        timing.append(time.perf_counter() - start)

    producer = threading.Thread(target=produce, name="bench-producer")
    producer.start()
    producer.join()
    subscription.dispose()
    assert received[0] == len(items), (received[0], len(items))
    return timing[0]


def pool_case(
    kind: str, n: int, bounded: bool, capacity: int | None = None, overflow: Any = "block"
) -> tuple[Operator, Callable[[], None]]:
    scheduler: abc.SchedulerBase
    if kind == "pool":
        pool = ThreadPoolScheduler(1)
        scheduler, cleanup = pool, lambda: pool.executor.shutdown(wait=True)
    else:
        loop = EventLoopScheduler()
        scheduler, cleanup = loop, loop.dispose
    if bounded:
        operator: Operator = observe_on_bounded(
            scheduler, capacity=capacity or n, overflow=overflow
        )
    else:
        operator = ops.observe_on(scheduler)
    return operator, cleanup


CASES: list[Case] = [
    ("bounded/pool", lambda n: pool_case("pool", n, True)),
    ("bounded/pool cap=1000 block", lambda n: pool_case("pool", n, True, 1000)),
    ("bounded/eventloop", lambda n: pool_case("eventloop", n, True)),
    ("observe_on/pool", lambda n: pool_case("pool", n, False)),
    ("observe_on/eventloop", lambda n: pool_case("eventloop", n, False)),
]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20k messages, 3 rounds")
    args = parser.parse_args(argv)
    n, rounds = (20_000, 3) if args.quick else (args.messages, args.rounds)
    versions = {
        "client": {
            "python": sys.version.split()[0],
            "reactivex": metadata.version("reactivex"),
        }
    }
    print_machine(versions, [f"{n} parsed v2 messages (generate_v2_messages, 70 distinct)"])
    items = messages(n)
    direct = [run_once(items, None) for _ in range(rounds)]
    base = min(direct)
    print(f"\ndirect (no hand-off): {base / n * 1e6:6.2f} us/message (best of {rounds})")
    print(f"{'hand-off':<30} {'added us/msg':>12} {'spread':>8} {'total us/msg':>13}")
    for name, make in CASES:
        added = []
        for _ in range(rounds):
            operator, cleanup = make(n)
            try:
                added.append((run_once(items, operator) - base) / n * 1e6)
            finally:
                cleanup()
        best = min(added)
        print(
            f"{name:<30} {best:12.2f} {max(added) - best:8.2f} "
            f"{best + base / n * 1e6:13.2f}   (median {statistics.median(added):.2f})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
