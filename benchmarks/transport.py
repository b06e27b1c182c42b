"""Transport benchmark: rxtweet ``lines()`` vs a plain-socket floor vs tweepy 4.12.1.

Run by hand (the test suite never runs it)::

    . .venv/bin/activate
    python benchmarks/transport.py            # about 1 minute
    python benchmarks/transport.py --quick    # under 30 s
    python benchmarks/transport.py --profile rxtweet

One local HTTP/1.1 chunked stream of real v2 filtered-stream lines is served, like X serves
it (one HTTP chunk per message, each message followed by ``\\r\\n``), by a server in its own
process. Three clients read it, each in a fresh interpreter of its own:

* ``floor``: a raw ``socket``, the request written by hand, status and headers parsed,
  de-chunked and split on ``\\n`` in a few lines of Python: the least work possible.
* ``rxtweet``: ``rxtweet.transport.lines(...)`` with its defaults, a counting subscriber.
* ``tweepy``: tweepy 4.12.1's ``StreamingClient`` read loop, untouched, with its defaults
  (``chunk_size=512``); only the URL is changed and ``on_data`` counts raw lines. It runs in
  ``benchmarks/.venv-tweepy`` (see ``_tweepy_env.py``), created on first use.

Two measures:

1. throughput: N lines sent in large ``sendall``s; the client's lines/s and its CPU seconds
   (``time.process_time()``, all threads), from just before connecting to the N-th line.
   Each client runs ``--repeats`` times, interleaved; the table shows the **best** run
   (shortest wall time) and the median.
2. delivery latency at ``--rate`` msg/s: the server stamps each message with
   ``time.monotonic_ns()`` just before its ``sendall`` (a ``"sent_ns"`` member written first
   in the JSON object); the client takes ``monotonic_ns() - sent_ns`` when the line reaches
   its callback. CLOCK_MONOTONIC is system-wide on Linux, so the two processes agree. The
   messages are split into ``--rounds`` connections per client, interleaved between the
   clients (so a slow spell of the machine does not land on one client only), and pooled.

Only the standard-library parts of this file and ``_common.py`` run in every interpreter
(server, floor, tweepy venv); rxtweet, reactivex and tweepy are imported inside the client
that needs them.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    BEARER,
    REPO,
    SHARED,
    STAMP_PREFIX,
    Prepare,
    Run,
    Server,
    floor_read,
    floor_request,
    fmt_ratio,
    frame,
    measure_once,
    percentile,
    pin_from_argv,
    print_machine,
    read_lines,
    report,
    run_client,
    send_blocks,
    send_paced,
    serve_connections,
    stamp,
    throughput_body,
)

SCRIPT = Path(__file__).resolve()
DATASETS = {
    # ~3.7 KB filtered-stream messages with expansions (8 tweets + 1 system message)
    "filter": SHARED / "data/real/v2/twarc-csv_streaming_output.jsonl",
    # ~100-400 B sample-stream messages ({"data": {"id", "text"}}, 70 lines)
    "sample": SHARED / "data/real/v2/twitter-dart_sample_stream.jsonl",
}
CLIENTS = ("floor", "rxtweet", "tweepy")
STREAM_PATH = "/2/tweets/search/stream"


# --- input --------------------------------------------------------------------------------


def load_lines(dataset: str) -> tuple[list[bytes], str]:
    """The message lines to serve (without terminators) and a description of their origin."""
    path = DATASETS[dataset]
    if path.exists():
        lines = read_lines(path)
        return lines, f"{path.name} (real, {len(lines)} distinct lines)"
    return _generated_lines(dataset), f"generated ({dataset}-like; {path} not found)"


def _generated_lines(dataset: str) -> list[bytes]:
    """Lines of about the size of the real ones, used when ../shared is absent."""
    size = 3700 if dataset == "filter" else 250
    out = []
    for i in range(9):
        text = f"benchmark tweet {i} " * (size // 20)
        obj = {
            "data": {"id": str(1377650000000000000 + i), "text": text[: size - 120]},
            "matching_rules": [{"id": "1377649934414049282", "tag": None}],
        }
        out.append(json.dumps(obj, separators=(",", ":")).encode())
    return out


def sent_ns_of(line: bytes) -> int:
    """The stamp written by :func:`_common.stamp` at the start of the object (cheap: a fixed
    prefix and one ``index``)."""
    start = 1 + len(STAMP_PREFIX)
    return int(line[start : line.index(b",", start)])


# --- server (its own process) ---------------------------------------------------------------


def serve(mode: str, dataset: str, n: int, rate: float) -> None:
    """Serve connections one after another until killed; one JSON stats line per connection.

    The first stdout line is the port. ``throughput``: ``n`` messages from a pre-built block,
    in large ``sendall``s. ``latency``: ``n`` messages, one chunk each, ``rate`` per second,
    each stamped just before it is sent.
    """
    lines, _ = load_lines(dataset)
    if mode == "throughput":
        serve_connections(send_blocks(throughput_body(lines, n)))
        return

    def message(i: int, now_ns: int) -> bytes:
        return frame(stamp(lines[i % len(lines)], now_ns))

    serve_connections(lambda conn: send_paced(conn, n, rate, message))


# --- clients (each in its own process) ------------------------------------------------------
#
# A client is prepared first (imports, objects), then only its run is timed and profiled:
# from just before it connects to its N-th line.


def prepare_floor(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
    """Raw socket: request by hand, parse status and headers, de-chunk, split on ``\\n``."""
    request = floor_request(STREAM_PATH, port)

    def handle(lines: list[bytes]) -> int:
        if latency:
            for line in lines:
                now = time.monotonic_ns()
                out.append(now - sent_ns_of(line))
        return len(lines)

    def run() -> int:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            return floor_read(sock.recv, n, handle)

    return run


def prepare_rxtweet(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
    """``rxtweet.transport.lines`` with its defaults and a trivial counting subscriber."""
    from rxtweet.http import StreamRequest
    from rxtweet.transport import lines as stream_lines

    url = f"http://127.0.0.1:{port}{STREAM_PATH}"
    request = StreamRequest("GET", url, headers={"Authorization": f"Bearer {BEARER}"})
    observable = stream_lines(request, stall_timeout=21.0)

    def run() -> int:
        count = 0
        errors: list[Exception] = []
        finished = threading.Event()

        def count_line(line: bytes) -> None:
            nonlocal count
            count += 1

        def time_line(line: bytes) -> None:
            nonlocal count
            now = time.monotonic_ns()
            if line:
                count += 1
                out.append(now - sent_ns_of(line))

        def on_error(exc: Exception) -> None:
            errors.append(exc)
            finished.set()

        subscription = observable.subscribe(
            time_line if latency else count_line, on_error, finished.set
        )
        finished.wait()
        subscription.dispose()
        if errors:
            raise errors[0]
        return count

    return run


def prepare_tweepy(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
    """tweepy 4.12.1 ``StreamingClient.filter()``: its own read loop, only the URL changed."""
    import tweepy
    import tweepy.streaming

    base_url = f"http://127.0.0.1:{port}"
    failures: list[str] = []

    class LocalStreamingClient(tweepy.StreamingClient):  # type: ignore[misc]
        count = 0

        def _connect(self, method: str, endpoint: str, **kwargs: Any) -> None:
            # StreamingClient._connect in 4.12.1, with the host changed:
            #   self.session.headers["Authorization"] = f"Bearer {self.bearer_token}"
            #   url = f"https://api.twitter.com/2/tweets/{endpoint}/stream"
            #   super()._connect(method, url, **kwargs)      # timeout=21 by default
            self.session.headers["Authorization"] = f"Bearer {self.bearer_token}"
            url = f"{base_url}/2/tweets/{endpoint}/stream"
            tweepy.streaming.BaseStream._connect(self, method, url, **kwargs)

        def on_data(self, raw_data: bytes) -> None:
            if latency:
                now = time.monotonic_ns()
                out.append(now - sent_ns_of(raw_data))
            self.count += 1
            if self.count >= n:
                self.disconnect()

        # Fail loudly instead of tweepy's reconnecting forever (max_retries=inf).
        def _fail(self, what: str) -> None:
            failures.append(what)
            self.disconnect()

        def on_closed(self, response: Any) -> None:
            # The N-th line may come with the terminating chunk in the same read.
            if self.count < n:
                self._fail(f"stream closed after {self.count} lines")

        def on_connection_error(self) -> None:
            self._fail("connection error")

        def on_request_error(self, status_code: int) -> None:
            self._fail(f"HTTP {status_code}")

        def on_exception(self, exception: Exception) -> None:
            self._fail(f"exception {exception!r}")

    stream = LocalStreamingClient(BEARER)  # tweepy's defaults: chunk_size=512 etc.

    def run() -> int:
        stream.filter()
        if failures:
            raise RuntimeError(f"tweepy: {failures}")
        return stream.count

    return run


CLIENT_SETUP: dict[str, tuple[Prepare, tuple[str, ...]]] = {
    "floor": (prepare_floor, ()),
    "rxtweet": (prepare_rxtweet, ("rxtweet", "reactivex", "requests", "urllib3")),
    "tweepy": (prepare_tweepy, ("tweepy", "requests", "urllib3")),
}


def client_main(kind: str, port: int, n: int, latency: bool, profile: bool) -> None:
    """Run one client (in this fresh interpreter) and print its :class:`Measure` as JSON."""
    prepare, packages = CLIENT_SETUP[kind]
    report(run_client(prepare, packages, kind, port, n, latency, profile))


# --- orchestration --------------------------------------------------------------------------


def measure_client(
    server: Server,
    kind: str,
    python: str,
    n: int,
    latency: bool,
    profile: bool = False,
    cpu: int | None = None,
) -> Run:
    args = [kind, str(server.port), str(n)]
    args += ["--latency"] if latency else []
    args += ["--profile"] if profile else []
    args += [] if cpu is None else [f"--cpu={cpu}"]
    return measure_once(server, SCRIPT, python, args, expect=n)


def print_throughput(runs: dict[str, list[Run]], line_bytes: float) -> dict[str, Run]:
    best = {kind: min(rs, key=lambda r: r.measure.wall) for kind, rs in runs.items()}
    floor = best["floor"].per_s if "floor" in best else None
    tweepy = best["tweepy"].per_s if "tweepy" in best else None
    print(
        f"{'client':<8} {'lines/s':>9} {'median':>9} {'MB/s':>7} {'CPU s':>6} "
        f"{'CPU µs/line':>11} {'vs floor':>8} {'vs tweepy':>9} {'server CPU':>10}"
    )
    for kind, run in best.items():
        m = run.measure
        median = statistics.median(r.per_s for r in runs[kind])
        busy = run.server["server_cpu"] / m.wall
        print(
            f"{kind:<8} {run.per_s:>9,.0f} {median:>9,.0f} "
            f"{run.per_s * line_bytes / 1e6:>7.1f} {m.cpu:>6.2f} "
            f"{m.cpu / m.lines * 1e6:>11.2f} {fmt_ratio(run.per_s, floor):>8} "
            f"{fmt_ratio(run.per_s, tweepy):>9} {busy:>9.0%}"
        )
    return best


def print_latency(runs: dict[str, list[Run]]) -> None:
    print(
        f"{'client':<8} {'msgs':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'CPU µs/msg':>10}  p50 per round (ms)"
    )
    for kind, rounds in runs.items():
        values = sorted(v for run in rounds for v in run.measure.latencies_ns)
        p50, p90, p99 = (percentile(values, f) / 1e6 for f in (0.5, 0.9, 0.99))
        cpu_per_msg = sum(r.measure.cpu for r in rounds) / len(values) * 1e6
        per_round = " ".join(
            f"{percentile(sorted(r.measure.latencies_ns), 0.5) / 1e6:.3f}" for r in rounds
        )
        print(
            f"{kind:<8} {len(values):>5} {p50:>7.3f} {p90:>7.3f} {p99:>7.3f} "
            f"{values[-1] / 1e6:>7.3f} {cpu_per_msg:>10.1f}  {per_round}"
        )


def orchestrate(args: argparse.Namespace) -> None:
    from _tweepy_env import ensure_tweepy_python

    clients = [c for c in CLIENTS if c in args.clients.split(",")]
    tweepy_python = str(ensure_tweepy_python()) if "tweepy" in clients else ""
    pythons = {kind: tweepy_python if kind == "tweepy" else args.python for kind in clients}
    server_cpu, client_cpu = (0, 1) if args.pin else (None, None)
    lines, source = load_lines(args.data)
    line_bytes = statistics.fmean(len(line) + 2 for line in lines)
    started = time.perf_counter()
    versions: dict[str, dict[str, str]] = {}

    def measure(server: Server, kind: str, n: int, latency: bool, profile: bool = False) -> Run:
        run = measure_client(server, kind, pythons[kind], n, latency, profile, client_cpu)
        versions[kind] = run.measure.versions
        return run

    print(
        f"== throughput: {args.lines:,} lines (mean {line_bytes:,.0f} B), "
        f"{args.repeats} interleaved runs per client, best (shortest wall) shown ==",
        flush=True,
    )
    throughput: dict[str, list[Run]] = {c: [] for c in clients}
    profiled = None
    server = Server(SCRIPT, ["throughput", args.data, str(args.lines), "0"], server_cpu)
    try:
        measure(server, clients[0], args.lines, latency=False)  # warm-up, discarded
        for _ in range(args.repeats):
            for kind in clients:
                throughput[kind].append(measure(server, kind, args.lines, latency=False))
        if args.profile:
            profiled = measure(server, args.profile, args.lines, latency=False, profile=True)
    finally:
        server.close()
    print_throughput(throughput, line_bytes)

    print(
        f"\n== delivery latency: {args.messages:,} messages per client at {args.rate:g} msg/s, "
        f"one chunk each, sent -> client callback; {args.rounds} interleaved rounds pooled ==",
        flush=True,
    )
    latency: dict[str, list[Run]] = {c: [] for c in clients}
    per_round = max(1, args.messages // args.rounds)
    server = Server(SCRIPT, ["latency", args.data, str(per_round), str(args.rate)], server_cpu)
    try:
        for _ in range(args.rounds):
            for kind in clients:
                latency[kind].append(measure(server, kind, per_round, latency=True))
    finally:
        server.close()
    print_latency(latency)

    print()
    print_machine(versions, [source])
    pinning = "server on CPU 0, clients on CPU 1" if args.pin else "not pinned"
    print(f"{pinning}; total run time {time.perf_counter() - started:.0f} s")
    if profiled is not None:
        m = profiled.measure
        print(
            f"\n== cProfile of one {args.profile} throughput run "
            f"({m.lines / m.wall:,.0f} lines/s under the profiler) =="
        )
        print("(all threads merged: a main thread waiting for a reader thread shows as 'acquire')")
        print(m.profile)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    pin_from_argv(argv)
    if argv[:1] == ["_serve"]:
        mode, dataset, n, rate = argv[1:5]
        serve(mode, dataset, int(n), float(rate))
        return
    if argv[:1] == ["_client"]:
        kind, port, n = argv[1:4]
        client_main(kind, int(port), int(n), "--latency" in argv, "--profile" in argv)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer lines and messages (<30 s)")
    parser.add_argument("--lines", type=int, help="throughput lines (default 50,000)")
    parser.add_argument("--messages", type=int, help="latency messages (default 1,000)")
    parser.add_argument("--rate", type=float, default=100.0, help="latency msg/s (100)")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per client")
    parser.add_argument("--rounds", type=int, default=4, help="latency rounds per client")
    parser.add_argument(
        "--data",
        choices=sorted(DATASETS),
        default="filter",
        help="filter: ~3.7 KB lines (default); sample: ~200 B lines",
    )
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset")
    parser.add_argument("--profile", choices=CLIENTS, help="add one cProfiled throughput run")
    parser.add_argument(
        "--pin", action="store_true", help="pin the server to CPU 0 and the clients to CPU 1"
    )
    dev_python = REPO / ".venv/bin/python"
    default_python = dev_python if dev_python.exists() else Path(sys.executable)
    parser.add_argument(
        "--python",
        default=str(default_python),
        help="interpreter for the floor and rxtweet clients (needs rxtweet)",
    )
    args = parser.parse_args(argv)
    if args.lines is None:
        args.lines = 10_000 if args.quick else 50_000
    if args.messages is None:
        args.messages = 200 if args.quick else 1_000
    orchestrate(args)


if __name__ == "__main__":
    main()
