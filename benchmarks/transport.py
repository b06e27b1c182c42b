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

Only this file's standard-library part runs in every interpreter (server, floor, tweepy
venv); rxtweet, reactivex and tweepy are imported inside the client that needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = {
    # ~3.7 KB filtered-stream messages with expansions (8 tweets + 1 system message)
    "filter": SHARED / "data/real/v2/twarc-csv_streaming_output.jsonl",
    # ~100-400 B sample-stream messages ({"data": {"id", "text"}}, 70 lines)
    "sample": SHARED / "data/real/v2/twitter-dart_sample_stream.jsonl",
}
CLIENTS = ("floor", "rxtweet", "tweepy")
STREAM_PATH = "/2/tweets/search/stream"
BEARER = "benchmark-bearer-token"
STAMP_PREFIX = b'{"sent_ns":'
FLOOR_RECV_SIZE = 64 * 1024  # the same read size as rxtweet's DEFAULT_CHUNK_SIZE
BLOCK_BYTES = 2 * 1024 * 1024  # throughput server: bytes per sendall
LATENCY_SETTLE_S = 0.3  # latency server: quiet time after the headers, before message 1


# --- input --------------------------------------------------------------------------------


def load_lines(dataset: str) -> tuple[list[bytes], str]:
    """The message lines to serve (without terminators) and a description of their origin."""
    path = DATASETS[dataset]
    if path.exists():
        lines = [line.rstrip(b"\r") for line in path.read_bytes().split(b"\n") if line.strip()]
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


def frame(line: bytes) -> bytes:
    """One message as X frames it: a single HTTP chunk holding the line and ``\\r\\n``."""
    return b"%x\r\n%b\r\n\r\n" % (len(line) + 2, line)


def stamp(line: bytes, sent_ns: int) -> bytes:
    """``line`` with ``"sent_ns": <sent_ns>`` as the first member of its JSON object."""
    return b"%b%d,%b" % (STAMP_PREFIX, sent_ns, line[1:])


def sent_ns_of(line: bytes) -> int:
    """The stamp written by :func:`stamp` (cheap: a fixed prefix and one ``index``)."""
    start = len(STAMP_PREFIX)
    return int(line[start : line.index(b",", start)])


# --- server (its own process) ---------------------------------------------------------------

RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Connection: close\r\n"
    b"x-rate-limit-limit: 50\r\n"
    b"x-rate-limit-remaining: 49\r\n"
    b"\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


def serve(mode: str, dataset: str, n: int, rate: float) -> None:
    """Serve connections one after another until killed; one JSON stats line per connection.

    The first stdout line is the port. ``throughput``: ``n`` messages from a pre-built block,
    in large ``sendall``s. ``latency``: ``n`` messages, one chunk each, ``rate`` per second,
    each stamped just before it is sent.
    """
    lines, _ = load_lines(dataset)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    print(listener.getsockname()[1], flush=True)
    if mode == "throughput":
        body = _throughput_body(lines, n)
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _read_request(conn)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            sent = 0
            wall = cpu = float("nan")
            with contextlib.suppress(OSError):  # a client may hang up after its N-th line
                conn.sendall(RESPONSE_HEAD)
                if mode == "throughput":
                    for part in body:
                        conn.sendall(part)
                        sent += len(part)
                else:
                    sent = _send_paced(conn, lines, n, rate)
                conn.sendall(LAST_CHUNK)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(10)
                while conn.recv(65536):  # until the client closes
                    pass
            stats = {"server_wall": wall, "server_cpu": cpu, "body_bytes": sent}
            print(json.dumps(stats), flush=True)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("client closed before sending its request")
        data += more
    return data


def _throughput_body(lines: list[bytes], n: int) -> list[memoryview]:
    """The ``n`` framed messages, as slices of one pre-built block of whole cycles."""
    cycle = [frame(line) for line in lines]
    cycle_bytes = sum(map(len, cycle))
    repeat = max(1, BLOCK_BYTES // cycle_bytes)
    framed = cycle * repeat
    block = memoryview(b"".join(framed))
    ends = [0]
    for part in framed:
        ends.append(ends[-1] + len(part))
    full, rest = divmod(n, len(framed))
    return [block] * full + ([block[: ends[rest]]] if rest else [])


def _send_paced(conn: socket.socket, lines: list[bytes], n: int, rate: float) -> int:
    time.sleep(LATENCY_SETTLE_S)  # let the client finish its response setup first
    interval_ns = int(1e9 / rate)
    start = time.monotonic_ns()
    sent = 0
    for i in range(n):
        wait_ns = start + i * interval_ns - time.monotonic_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)
        message = frame(stamp(lines[i % len(lines)], time.monotonic_ns()))
        conn.sendall(message)
        sent += len(message)
    return sent


# --- clients (each in its own process) ------------------------------------------------------
#
# A client is prepared first (imports, objects), then only its run is timed and profiled:
# from just before it connects to its N-th line.


@dataclass
class Measure:
    """What one client run reports (printed as JSON on its last stdout line)."""

    client: str
    lines: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    profile: str = ""


#: ``prepare(port, n, latency, latencies_out)`` does the untimed setup and returns the timed
#: part, which returns the number of lines it counted.
Prepare = Callable[[int, int, bool, list[int]], Callable[[], int]]


def _versions(*names: str) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def prepare_floor(port: int, n: int, latency: bool, out: list[int]) -> Callable[[], int]:
    """Raw socket: request by hand, parse status and headers, de-chunk, split on ``\\n``."""
    request = (
        f"GET {STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {BEARER}\r\nAccept-Encoding: identity\r\n\r\n"
    ).encode()

    def run() -> int:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            return _floor_read(sock.recv, n, latency, out)

    return run


def _floor_read(recv: Callable[[int], bytes], n: int, latency: bool, out: list[int]) -> int:
    buf = b""
    while b"\r\n\r\n" not in buf:
        more = recv(FLOOR_RECV_SIZE)
        if not more:
            raise ConnectionError("closed before the headers")
        buf += more
    head, _, buf = buf.partition(b"\r\n\r\n")
    status, *header_lines = head.split(b"\r\n")
    if status.split()[1] != b"200":
        raise ConnectionError(f"status {status!r}")
    headers = dict(h.lower().split(b":", 1) for h in header_lines)
    if headers.get(b"transfer-encoding", b"").strip() != b"chunked":
        raise ConnectionError("the floor reader only speaks chunked")
    count = 0
    partial = b""  # the start of an incomplete line
    while True:
        # every complete chunk in buf -> its payload
        pieces = [partial]
        pos = 0
        end = len(buf)
        done = False
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            size = int(buf[pos:nl], 16)
            if size == 0:
                done = True
                break
            stop = nl + 2 + size
            if stop + 2 > end:
                break
            pieces.append(buf[nl + 2 : stop])
            pos = stop + 2
        lines = b"".join(pieces).split(b"\n")
        partial = lines.pop()
        if latency:
            for line in lines:
                now = time.monotonic_ns()
                out.append(now - sent_ns_of(line))
        count += len(lines)
        if done or count >= n:
            return count
        more = recv(FLOOR_RECV_SIZE)
        if not more:
            raise ConnectionError("closed before the last chunk")
        buf = buf[pos:] + more if pos < end else more


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


def run_client(kind: str, port: int, n: int, latency: bool, profile: bool) -> None:
    """Run one client (in this fresh interpreter) and print its :class:`Measure` as JSON."""
    prepare, packages = CLIENT_SETUP[kind]
    measure = Measure(kind, versions=_versions(*packages))
    run = prepare(port, n, latency, measure.latencies_ns)
    if profile:
        measure.profile = _profiled(run, measure)
    else:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        measure.lines = run()
        measure.wall = time.perf_counter() - wall0
        measure.cpu = time.process_time() - cpu0
    print(json.dumps(measure.__dict__), flush=True)


def _profiled(run: Callable[[], int], measure: Measure) -> str:
    """Run under cProfile, in the calling thread and in every thread it starts."""
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        thread_profile = cProfile.Profile()
        profiles.append(thread_profile)
        thread_profile.runcall(original_run, self)

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    measure.lines = main_profile.runcall(run)
    measure.wall = time.perf_counter() - wall0
    measure.cpu = time.process_time() - cpu0
    for thread in threading.enumerate():  # reader threads finish just after on_completed
        if thread is not threading.current_thread():
            thread.join(5)
    text = io.StringIO()
    stats = pstats.Stats(main_profile, stream=text)
    for thread_profile in profiles:
        stats.add(thread_profile)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    return text.getvalue()


# --- orchestration --------------------------------------------------------------------------


@dataclass
class Run:
    measure: Measure
    server: dict[str, float]

    @property
    def lines_per_s(self) -> float:
        return self.measure.lines / self.measure.wall


class Server:
    """The stream server in its own process, serving one connection after another."""

    def __init__(self, mode: str, dataset: str, n: int, rate: float, cpu: int | None) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "_serve"]
        command += [mode, dataset, str(n), str(rate)]
        command += [] if cpu is None else [f"--cpu={cpu}"]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        self.port = int(self.stdout.readline())

    def stats(self) -> dict[str, float]:
        """The server's stats line for the connection that has just ended."""
        line = self.stdout.readline()
        if not line:
            raise RuntimeError("the server process died")
        stats: dict[str, float] = json.loads(line)
        return stats

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(5)


def measure_once(
    server: Server,
    kind: str,
    python: str,
    n: int,
    latency: bool,
    profile: bool = False,
    cpu: int | None = None,
) -> Run:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the tweepy venv must not see the dev venv's packages
    command = [python, str(Path(__file__).resolve()), "_client", kind, str(server.port), str(n)]
    command += ["--latency"] if latency else []
    command += ["--profile"] if profile else []
    command += [] if cpu is None else [f"--cpu={cpu}"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} client failed:\n{done.stderr}{done.stdout}")
    measure = Measure(**json.loads(done.stdout.strip().splitlines()[-1]))
    if measure.lines != n:
        raise RuntimeError(f"{kind} client counted {measure.lines} lines, expected {n}")
    return Run(measure, server.stats())


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return float(sorted_values[rank - 1])


def fmt_ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:5.2f}x" if reference else "   -  "


def print_throughput(runs: dict[str, list[Run]], line_bytes: float) -> dict[str, Run]:
    best = {kind: min(rs, key=lambda r: r.measure.wall) for kind, rs in runs.items()}
    floor = best["floor"].lines_per_s if "floor" in best else None
    tweepy = best["tweepy"].lines_per_s if "tweepy" in best else None
    print(
        f"{'client':<8} {'lines/s':>9} {'median':>9} {'MB/s':>7} {'CPU s':>6} "
        f"{'CPU µs/line':>11} {'vs floor':>8} {'vs tweepy':>9} {'server CPU':>10}"
    )
    for kind, run in best.items():
        m = run.measure
        median = statistics.median(r.lines_per_s for r in runs[kind])
        busy = run.server["server_cpu"] / m.wall
        print(
            f"{kind:<8} {run.lines_per_s:>9,.0f} {median:>9,.0f} "
            f"{run.lines_per_s * line_bytes / 1e6:>7.1f} {m.cpu:>6.2f} "
            f"{m.cpu / m.lines * 1e6:>11.2f} {fmt_ratio(run.lines_per_s, floor):>8} "
            f"{fmt_ratio(run.lines_per_s, tweepy):>9} {busy:>9.0%}"
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


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def print_machine(versions: dict[str, dict[str, str]], source: str) -> None:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(
        f"machine: {cpu_model()}, nproc={affinity} (cpu_count={os.cpu_count()}), "
        f"{platform.system()} {platform.release()}"
    )
    for kind, found in versions.items():
        print(f"  {kind:<8} " + ", ".join(f"{k} {v}" for k, v in found.items()))
    print(f"input: {source}")


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
        run = measure_once(server, kind, pythons[kind], n, latency, profile, client_cpu)
        versions[kind] = run.measure.versions
        return run

    print(
        f"== throughput: {args.lines:,} lines (mean {line_bytes:,.0f} B), "
        f"{args.repeats} interleaved runs per client, best (shortest wall) shown ==",
        flush=True,
    )
    throughput: dict[str, list[Run]] = {c: [] for c in clients}
    profiled = None
    server = Server("throughput", args.data, args.lines, 0, server_cpu)
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
    server = Server("latency", args.data, per_round, args.rate, server_cpu)
    try:
        for _ in range(args.rounds):
            for kind in clients:
                latency[kind].append(measure(server, kind, per_round, latency=True))
    finally:
        server.close()
    print_latency(latency)

    print()
    print_machine(versions, source)
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
    pin = [a for a in argv if a.startswith("--cpu=")]
    if pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(pin[0].removeprefix("--cpu="))})
    if argv[:1] == ["_serve"]:
        mode, dataset, n, rate = argv[1:5]
        serve(mode, dataset, int(n), float(rate))
        return
    if argv[:1] == ["_client"]:
        kind, port, n = argv[1:4]
        run_client(kind, int(port), int(n), "--latency" in argv, "--profile" in argv)
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
