"""Ingest -> NATS JetStream -> N workers: publish msg/s with acks, and worker throughput.

Runs a real ``nats-server -js`` (the pip-installed binary beside this Python; a temporary
store, a free port on 127.0.0.1) and measures:

1. **publish**: real v2 payloads (the twarc sample in shared/data/real/v2, each given a
   unique tweet id) through :class:`rxtweet.nats.JetStreamPublisher` as a stream's items:
   messages per second until the server has acked every one (``Nats-Msg-Id`` set, stored
   on file). The publisher alone (no HTTP reader): its ceiling, not X's rate.
2. **workers**: N worker processes (1, 2, 4) sharing one durable consumer, each message
   costing a 1 ms job (``time.sleep``: a job waiting on I/O; a CPU-bound job stops scaling
   at the core count instead); messages per second from the start signal until every
   message is handled and acked.

    python benchmarks/nats.py [--messages 20000] [--work-messages 2000]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

# This file is named nats.py: its directory must not shadow the nats package.
HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if p != HERE] + [HERE]

import orjson  # noqa: E402
import reactivex  # noqa: E402
from _common import SHARED, print_machine, read_lines, versions  # noqa: E402

from rxtweet.parse import Parsed  # noqa: E402
from rxtweet.v2.convert import to_stream_response  # noqa: E402

NATS_SERVER = Path(sys.executable).parent / "nats-server"
PAYLOADS = SHARED / "data/real/v2/twarc-csv_streaming_output.jsonl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store: Path) -> tuple[subprocess.Popen[bytes], str]:
    port, monitor = free_port(), free_port()
    command = [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)]
    process = subprocess.Popen(
        [*command, "-js", "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=0.5):
                return process, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("nats-server did not start")


def payloads(count: int) -> list[bytes]:
    """``count`` real v2 lines, each with its own tweet id (so none is a duplicate)."""
    base = [orjson.loads(line) for line in read_lines(PAYLOADS) if b'"data"' in line]
    lines = []
    for n, doc in zip(range(count), itertools.cycle(base), strict=False):
        doc = dict(doc, data=dict(doc["data"], id=str(1_800_000_000_000_000_000 + n)))
        lines.append(orjson.dumps(doc))
    return lines


class _Source:
    """A stream object's surface for the publisher: ``items`` (no HTTP reader)."""

    def __init__(self, lines: list[bytes]) -> None:
        self.items = reactivex.from_iterable(
            [Parsed(to_stream_response(orjson.loads(raw)), raw) for raw in lines]
        )


def bench_publish(url: str, lines: list[bytes], stream_name: str, max_pending: int) -> float:
    from rxtweet.nats import publish

    publisher = publish(
        url,
        stream_name=stream_name,
        subject=f"{stream_name.lower()}.{{stream}}",  # one stream each: subjects must not overlap
        kind="tweets",
        max_pending=max_pending,
    )
    source = _Source(lines)
    started = time.perf_counter()
    publisher.publish(source).run()  # completes once every message is acked
    elapsed = time.perf_counter() - started
    assert publisher.stats.published == len(lines), publisher.stats
    return len(lines) / elapsed


def worker(url: str, stream_name: str, durable: str, job: float, go: Any, counter: Any) -> None:
    from rxtweet.nats import consume

    def handle(_: Any) -> None:
        time.sleep(job)
        with counter.get_lock():
            counter.value += 1

    go.wait()
    subscription = consume(url, stream_name=stream_name, durable=durable, batch=20).subscribe(
        handle
    )
    time.sleep(3600)  # until the parent terminates the process
    subscription.dispose()


def bench_workers(url: str, stream_name: str, n: int, total: int, job: float) -> float:
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    counter = context.Value("q", 0)
    durable = f"bench{n}"
    processes = [
        context.Process(target=worker, args=(url, stream_name, durable, job, go, counter))
        for _ in range(n)
    ]
    for process in processes:
        process.start()
    time.sleep(1.5)  # the interpreters import rxtweet and nats-py before the clock starts
    started = time.perf_counter()
    go.set()
    while counter.value < total:
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.terminate()
        process.join(5)
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="published (20000)")
    parser.add_argument("--work-messages", type=int, default=2_000, help="for workers (2000)")
    parser.add_argument("--max-pending", type=int, default=1024)
    parser.add_argument("--job-ms", type=float, default=1.0)
    args = parser.parse_args()
    if not NATS_SERVER.exists():
        raise SystemExit(f"{NATS_SERVER} is missing: pip install -e '.[test]'")
    version = subprocess.run(
        [str(NATS_SERVER), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print_machine(
        {"rxtweet": versions("nats-py", "reactivex", "orjson") | {"server": version}},
        [f"{PAYLOADS.name} (real v2 payloads, unique ids)"],
    )
    store = Path(tempfile.mkdtemp(prefix="rxtweet-nats-bench-"))
    process, url = start_server(store)
    try:
        lines = payloads(args.messages)
        size = sum(map(len, lines)) / len(lines)
        bench_publish(url, lines[:2000], "WARMUP", args.max_pending)
        rates = [bench_publish(url, lines, f"PUB{i}", args.max_pending) for i in range(3)]
        print(
            f"publish, acked, file storage: {max(rates):,.0f} msg/s best of 3 "
            f"({', '.join(f'{r:,.0f}' for r in rates)}); {len(lines):,} messages of "
            f"{size:,.0f} B, max_pending={args.max_pending}"
        )
        work = lines[: args.work_messages]
        bench_publish(url, work, "WORK", args.max_pending)
        job = args.job_ms / 1000
        base = None
        for n in (1, 2, 4):
            rate = bench_workers(url, "WORK", n, len(work), job)
            base = base or rate
            print(
                f"workers={n}: {rate:,.0f} msg/s with a {args.job_ms:g} ms job "
                f"({rate / base:.2f}x one worker; {n / job:,.0f} msg/s if only the job counted)"
            )
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(store, ignore_errors=True)
    print(f"reproduce: python benchmarks/nats.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
