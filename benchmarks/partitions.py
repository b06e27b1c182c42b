"""The full firehose in one process: 20 partition connections merged vs one connection.

```sh
. .venv/bin/activate
python benchmarks/partitions.py                # about 1 minute
python benchmarks/partitions.py --quick        # about 20 s
python benchmarks/partitions.py --server fake  # FakeStreamServer instead of the lean server
```

Every run is a fresh interpreter reading ``--messages`` tweets (default 200,000) of real v2
payloads from a server in another process on 127.0.0.1, through rxtweet's reactive face
(``stream.tweets.pipe(ops.take(N))``, a counting observer), timed from just before it
subscribes to the N-th tweet. Client CPU is ``time.process_time()`` (all threads).

Clients:

* ``firehose-20``: ``client.firehose_stream(partitions="all")``: 20 connections, each
  carrying 1/20 of the messages, merged into one stream.
* ``firehose-1``: ``client.firehose_stream(partitions=1)`` against a server whose
  partition 1 carries every message: one connection, through the partition layer.
* ``sample``: ``client.sample_stream()``: one plain connection (no partition layer at all),
  the same messages.

Servers (``--server``):

* ``lean`` (default): threads in one process, one per connection, each sending its
  partition's share of pre-built chunked blocks in 2 MiB ``sendall``s (one HTTP chunk per
  message, as X frames them; see ``_common.py``). Message ``i`` goes to partition
  ``i % 20 + 1``: disjoint shards whose union is the whole set. After its share a
  connection stays open and silent, so no partition reconnects (and repeats itself) while
  the others finish.
* ``fake``: :class:`rxtweet.testing.FakeStreamServer` in its own process, with the same
  messages (``messages=``) and its own partition semantics. It builds and writes every
  message in Python (a field filter, a chunk, a ``sendall`` each), so on this 2-core
  machine its CPU competes with the client's: it measures the server as much as the
  client, which is why ``lean`` is the default.

Input: the 8 tweet messages of ``../shared/data/real/v2/twarc-csv_streaming_output.jsonl``
(with their ``includes``; ``matching_rules`` and twarc's ``__twarc`` key removed, since the
firehose sends neither; about 3.9 KB each), repeated. ``--data sample`` uses the 70 short
``twitter-dart_sample_stream.jsonl`` lines instead.

At the end the script checks the goals of issue 13 (the 20-partition stream at >= 0.8x the
single connection's rate and >= 15,000 tweets/s) and prints ``[met]`` or ``[MISSED]``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from _common import (
    BEARER,
    RESPONSE_HEAD,
    SHARED,
    Measure,
    print_machine,
    read_lines,
    read_request,
    report,
    run_client,
    throughput_body,
)

SCRIPT = Path(__file__).resolve()
PARTITIONS = 20
INPUTS = {
    "twarc": SHARED / "data/real/v2/twarc-csv_streaming_output.jsonl",
    "sample": SHARED / "data/real/v2/twitter-dart_sample_stream.jsonl",
}
CLIENTS = ("firehose-20", "firehose-1", "sample")
PACKAGES = ("rxtweet", "reactivex", "orjson", "requests", "urllib3")
GOAL_RATIO = 0.8
GOAL_RATE = 15_000.0


# --- input --------------------------------------------------------------------------------


def load_lines(data: str) -> list[bytes]:
    """One cycle of tweet messages, as the firehose would send them (compact JSON)."""
    path = INPUTS[data]
    if path.exists():
        docs = [json.loads(line) for line in read_lines(path)]
    else:
        from rxtweet.testing import generate_v2_messages

        gen = generate_v2_messages(seed=0)
        docs = [next(gen) for _ in range(64)]
    lines = []
    for doc in docs:
        if not isinstance(doc.get("data"), dict):
            continue  # the one system message
        doc.pop("matching_rules", None)
        doc.pop("__twarc", None)
        lines.append(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
    return lines


def shard(lines: list[bytes], n: int, shards: int, k: int) -> tuple[list[bytes], int]:
    """Partition ``k`` (0-based) of ``n`` messages cycling over ``lines``: message ``i`` is
    in partition ``i % shards``. Returns one cycle of the shard's lines and its count."""
    count = len(range(k, n, shards))
    period = len(lines)  # the shard's line sequence repeats after this many of its messages
    cycle = [lines[(k + j * shards) % len(lines)] for j in range(min(period, count))]
    return cycle, count


# --- servers (their own process) ----------------------------------------------------------


def serve_lean(n: int, shards: int, data: str) -> None:
    """Threaded: each connection sends its partition's share, then stays open and silent."""
    lines = load_lines(data)
    bodies = {}
    for k in range(shards):
        cycle, count = shard(lines, n, shards, k)
        bodies[k + 1] = throughput_body(cycle, count)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                head = read_request(conn).split(b"\r\n", 1)[0].decode()
                query = parse_qs(urlsplit(head.split()[1]).query)
                partition = int(query.get("partition", ["1"])[0])
                conn.sendall(RESPONSE_HEAD)
                for block in bodies.get(partition, []):
                    conn.sendall(block)
                while conn.recv(65536):  # until the client closes
                    pass
            except OSError:
                pass

    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def serve_fake(n: int, shards: int, data: str) -> None:
    """FakeStreamServer with the same messages, as fast as the client reads."""
    from rxtweet.testing import FakeStreamServer

    docs = [json.loads(line) for line in load_lines(data)]
    messages = [docs[i % len(docs)] for i in range(n)]
    with FakeStreamServer(messages=messages, bearer_token=BEARER, fields="all") as server:
        print(urlsplit(server.url).port, flush=True)
        while True:
            time.sleep(3600)


# --- clients (their own process) ----------------------------------------------------------


def prepare(kind: str) -> Callable[[int, int, bool, list[int]], Callable[[], int]]:
    def prepare_run(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
        from reactivex import operators as ops

        import rxtweet

        client = rxtweet.StreamingClient(BEARER, base_url=f"http://127.0.0.1:{port}")
        if kind == "firehose-20":
            source: Any = client.firehose_stream(partitions="all").tweets
        elif kind == "firehose-1":
            source = client.firehose_stream(partitions=1).tweets
        else:
            source = client.sample_stream().tweets
        counted = 0

        def on_next(_: Any) -> None:
            nonlocal counted
            counted += 1

        def run() -> int:
            errors: list[Exception] = []
            finished = threading.Event()

            def on_error(exc: Exception) -> None:
                errors.append(exc)
                finished.set()

            source.pipe(ops.take(n)).subscribe(on_next, on_error, finished.set)
            finished.wait()
            if errors:
                raise errors[0]
            return counted

        return run

    return prepare_run


# --- orchestration ------------------------------------------------------------------------


class Server:
    def __init__(self, how: str, n: int, shards: int, data: str) -> None:
        command = [sys.executable, str(SCRIPT), "_serve", how, str(n), str(shards), data]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def cpu(self) -> float:
        """The server process's CPU seconds so far (user + system, from /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            import os

            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def measure(kind: str, how: str, n: int, data: str) -> tuple[Measure, float]:
    """One client run against a fresh server; (the client's measure, the server's CPU s)."""
    shards = PARTITIONS if kind == "firehose-20" or how == "fake" else 1
    server = Server(how, n, shards, data)
    try:
        cpu0 = server.cpu()
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "_client", kind, str(server.port), str(n)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        server_cpu = server.cpu() - cpu0
    finally:
        server.close()
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-3000:]}")
    result = Measure(**json.loads(done.stdout.strip().splitlines()[-1]))
    if result.lines != n:
        raise RuntimeError(f"{kind} counted {result.lines} of {n}")
    return result, server_cpu


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_serve":
        how, n, shards, data = argv[1], int(argv[2]), int(argv[3]), argv[4]
        (serve_lean if how == "lean" else serve_fake)(n, shards, data)
        return
    if argv and argv[0] == "_client":
        kind, port, n = argv[1], int(argv[2]), int(argv[3])
        report(run_client(prepare(kind), PACKAGES, kind, port, n, False, False))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="tweets per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per client (best shown)")
    parser.add_argument("--server", choices=("lean", "fake"), default="lean")
    parser.add_argument("--data", choices=tuple(INPUTS), default="twarc")
    parser.add_argument("--quick", action="store_true", help="50,000 tweets, 2 runs")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.repeats = 50_000, 2
    clients = [c for c in args.clients.split(",") if c]
    lines = load_lines(args.data)
    mean = statistics.fmean(len(line) for line in lines)
    print_machine({}, [])
    print(
        f"input: {args.data}, {len(lines)} tweet lines per cycle, mean {mean:,.0f} B; "
        f"{args.messages:,} tweets per run; server: {args.server}\n"
    )
    runs: dict[str, list[tuple[Measure, float]]] = {c: [] for c in clients}
    measure(clients[0], args.server, min(args.messages, 20_000), args.data)  # warm-up
    for _ in range(args.repeats):
        for kind in clients:  # interleaved, so that a slow spell hits every client
            runs[kind].append(measure(kind, args.server, args.messages, args.data))
    rates: dict[str, float] = {}
    print("| client | connections | tweets/s (best) | median | CPU µs/tweet | server CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, results in runs.items():
        best, server_cpu = min(results, key=lambda r: r[0].wall)
        median = statistics.median(r[0].lines / r[0].wall for r in results)
        rates[kind] = best.lines / best.wall
        connections = PARTITIONS if kind == "firehose-20" else 1
        print(
            f"| {kind} | {connections} | {rates[kind]:,.0f} | {median:,.0f} | "
            f"{best.cpu / best.lines * 1e6:.1f} | {server_cpu / best.wall:.0%} |"
        )
    if "firehose-20" in rates:
        single = max(rates.get("firehose-1", 0.0), rates.get("sample", 0.0))
        print()
        if single:
            ratio = rates["firehose-20"] / single
            mark = "met" if ratio >= GOAL_RATIO else "MISSED"
            print(f"[{mark}] 20 partitions at {ratio:.2f}x the best single connection (>= 0.8x)")
        rate = rates["firehose-20"]
        mark = "met" if rate >= GOAL_RATE else "MISSED"
        print(f"[{mark}] 20 partitions: {rate:,.0f} tweets/s aggregate (>= 15,000)")


if __name__ == "__main__":
    main()
