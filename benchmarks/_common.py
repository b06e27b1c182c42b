"""What the benchmark scripts share: the local stream server, the floor reader, client runs.

Standard library only: this module is imported by every interpreter a benchmark starts (the
server, the floor and rxtweet clients in the dev venv, the tweepy clients in
``benchmarks/.venv-tweepy``). rxtweet, reactivex and tweepy are imported by the clients that
need them, inside the benchmark scripts.

The pieces:

* serving: :func:`serve_connections` accepts one connection after another on ``127.0.0.1``
  and answers each with a chunked HTTP/1.1 stream (one chunk per message, each message
  followed by ``\\r\\n``, as X sends them); what goes in the body is the caller's
  ``send``. :func:`throughput_body` pre-builds a body for large ``sendall``s;
  :func:`send_paced` sends stamped messages at a fixed rate. :class:`Server` runs a
  script's ``_serve`` mode in its own process.
* clients: :class:`Measure` is what one client run reports, :func:`run_client` runs one
  (untimed setup, then the timed part, optionally under cProfile), :func:`measure_once`
  starts one in a fresh interpreter. :func:`floor_read` is the plain-socket reader.
* reporting: :func:`percentile`, :func:`fmt_ratio`, :func:`print_machine`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(__file__).resolve().parents[2] / "shared"

BEARER = "benchmark-bearer-token"
STAMP_PREFIX = b'"sent_ns":'
FLOOR_RECV_SIZE = 127 * 1024  # the same read size as rxtweet's DEFAULT_CHUNK_SIZE
BLOCK_BYTES = 2 * 1024 * 1024  # throughput server: bytes per sendall
LATENCY_SETTLE_S = 0.3  # latency server: quiet time after the headers, before message 1

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


# --- messages -------------------------------------------------------------------------------


def frame(line: bytes) -> bytes:
    """One message as X frames it: a single HTTP chunk holding the line and ``\\r\\n``."""
    return b"%x\r\n%b\r\n\r\n" % (len(line) + 2, line)


def stamp(line: bytes, sent_ns: int, at: int = 1) -> bytes:
    """``line`` with ``"sent_ns": <sent_ns>,`` inserted at byte ``at`` (just after a ``{``).

    ``at=1`` makes it the first member of the message's object; the end-to-end benchmark
    puts it first in the v2 ``data`` object instead, where the hooks can see it.
    """
    return b"%b%b%d,%b" % (line[:at], STAMP_PREFIX, sent_ns, line[at:])


def read_lines(path: Path) -> list[bytes]:
    """The non-blank lines of a JSON-lines file (``.bz2`` decompressed), without terminators."""
    if path.suffix == ".bz2":
        import bz2

        data = bz2.decompress(path.read_bytes())
    else:
        data = path.read_bytes()
    return [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]


# --- server (its own process) ---------------------------------------------------------------


def serve_connections(send: Callable[[socket.socket], int]) -> None:
    """Serve connections one after another until killed; one JSON stats line per connection.

    The first stdout line is the port. Each connection: read the request, send the response
    head, ``send(conn)`` (which returns the body bytes it sent), the terminating chunk, then
    wait for the client to close.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            read_request(conn)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            sent = 0
            wall = cpu = float("nan")
            with contextlib.suppress(OSError):  # a client may hang up after its N-th line
                conn.sendall(RESPONSE_HEAD)
                sent = send(conn)
                conn.sendall(LAST_CHUNK)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(10)
                while conn.recv(65536):  # until the client closes
                    pass
            stats = {"server_wall": wall, "server_cpu": cpu, "body_bytes": sent}
            print(json.dumps(stats), flush=True)


def read_request(conn: socket.socket) -> bytes:
    """The request head (and whatever body came with it); the server ignores its content."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("client closed before sending its request")
        data += more
    return data


def throughput_body(lines: list[bytes], n: int) -> list[memoryview]:
    """The first ``n`` framed messages of ``lines`` repeated, as slices of one pre-built block."""
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


def send_blocks(blocks: list[memoryview]) -> Callable[[socket.socket], int]:
    """A ``send`` for :func:`serve_connections` that writes pre-built blocks."""

    def send(conn: socket.socket) -> int:
        sent = 0
        for part in blocks:
            conn.sendall(part)
            sent += len(part)
        return sent

    return send


def send_paced(
    conn: socket.socket, n: int, rate: float, message: Callable[[int, int], bytes]
) -> int:
    """Send ``n`` messages, ``rate`` per second; ``message(i, now_ns)`` builds the i-th one
    (framed), stamped with ``now_ns``, just before its ``sendall``."""
    time.sleep(LATENCY_SETTLE_S)  # let the client finish its response setup first
    interval_ns = int(1e9 / rate)
    start = time.monotonic_ns()
    sent = 0
    for i in range(n):
        wait_ns = start + i * interval_ns - time.monotonic_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)
        data = message(i, time.monotonic_ns())
        conn.sendall(data)
        sent += len(data)
    return sent


# --- clients (each in its own process) ------------------------------------------------------
#
# A client is prepared first (imports, objects), then only its run is timed and profiled:
# from just before it connects to its N-th message.


@dataclass
class Measure:
    """What one client run reports (printed as JSON on its last stdout line)."""

    client: str
    lines: int = 0  # messages counted (lines for the transport benchmark)
    wall: float = 0.0
    cpu: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    profile: str = ""
    peak_rss_kb: int = 0
    #: (messages so far, RSS in KiB, seconds since the start): the memory test's samples.
    rss_samples: list[tuple[int, int, float]] = field(default_factory=list)


#: ``prepare(port, n, latency, latencies_out)`` does the untimed setup and returns the timed
#: part, which returns the number of messages it counted.
Prepare = Callable[[int, int, bool, list[int]], Callable[[], int]]


def versions(*names: str) -> dict[str, str]:
    """Python's version and the installed versions of ``names`` (those that are installed)."""
    found = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def rss_kb() -> int:
    """This process's resident set size now, in KiB (its peak where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return peak_rss_kb()


def peak_rss_kb() -> int:
    """The peak resident set size of this process so far, in KiB.

    ``VmHWM`` from ``/proc/self/status`` (or ``VmRSS`` if larger: the kernel updates the
    high-water mark lazily). Unlike ``ru_maxrss``, which Linux carries over ``execve`` (a
    client would report the peak of the orchestrator it was forked from), it counts this
    program only.
    """
    found: dict[bytes, int] = {}
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith((b"VmHWM:", b"VmRSS:")):
                    found[line[:5]] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    if found:
        return max(found.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def run_client(
    prepare: Prepare,
    packages: Iterable[str],
    kind: str,
    port: int,
    n: int,
    latency: bool,
    profile: bool,
) -> Measure:
    """Run one client (in this fresh interpreter): untimed ``prepare``, then the timed run."""
    measure = Measure(kind, versions=versions(*packages))
    run = prepare(port, n, latency, measure.latencies_ns)
    if profile:
        measure.profile = profiled(run, measure)
    else:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        measure.lines = run()
        measure.wall = time.perf_counter() - wall0
        measure.cpu = time.process_time() - cpu0
    measure.peak_rss_kb = peak_rss_kb()
    return measure


def report(measure: Measure) -> None:
    """Print ``measure`` as the JSON last line of a client's stdout."""
    print(json.dumps(measure.__dict__), flush=True)


def profiled(run: Callable[[], int], measure: Measure, top: int = 25) -> str:
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
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return text.getvalue()


def floor_read(recv: Callable[[int], bytes], n: int, handle: Callable[[list[bytes]], int]) -> int:
    """The plain-socket reader: parse status and headers, de-chunk, split on ``\\n``.

    ``handle(lines)`` gets each read's complete lines (without ``\\n``) and returns how many
    of them count; reading stops once ``n`` have counted, or at the terminating chunk.
    """
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
        count += handle(lines)
        if done or count >= n:
            return count
        more = recv(FLOOR_RECV_SIZE)
        if not more:
            raise ConnectionError("closed before the last chunk")
        buf = buf[pos:] + more if pos < end else more


def floor_request(path: str, port: int) -> bytes:
    """The floor's hand-written request."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {BEARER}\r\nAccept-Encoding: identity\r\n\r\n"
    ).encode()


# --- orchestration --------------------------------------------------------------------------


class Server:
    """``script``'s ``_serve`` mode in its own process, serving one connection after another."""

    def __init__(self, script: Path, args: list[str], cpu: int | None = None) -> None:
        command = [sys.executable, str(script), "_serve", *args]
        command += [] if cpu is None else [f"--cpu={cpu}"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
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

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass
class Run:
    """One client run and the server's stats for its connection."""

    measure: Measure
    server: dict[str, float]

    @property
    def per_s(self) -> float:
        return self.measure.lines / self.measure.wall


def measure_once(
    server: Server, script: Path, python: str, args: list[str], expect: int, timeout: float = 300
) -> Run:
    """Run ``script _client *args`` with ``python`` in a fresh process; check its count."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the tweepy venv must not see the dev venv's packages
    command = [python, str(script), "_client", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"client {args} failed:\n{done.stderr}{done.stdout}")
    measure = Measure(**json.loads(done.stdout.strip().splitlines()[-1]))
    if measure.lines != expect:
        raise RuntimeError(f"client {args} counted {measure.lines}, expected {expect}")
    return Run(measure, server.stats())


def pin_from_argv(argv: list[str]) -> None:
    """Apply a ``--cpu=N`` argument (pin this process to CPU N) where the OS allows it."""
    pin = [a for a in argv if a.startswith("--cpu=")]
    if pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(pin[0].removeprefix("--cpu="))})


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return float(sorted_values[rank - 1])


def fmt_ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:5.2f}x" if reference else "   -  "


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def print_machine(found_versions: dict[str, dict[str, str]], sources: Iterable[str]) -> None:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(
        f"machine: {cpu_model()}, nproc={affinity} (cpu_count={os.cpu_count()}), "
        f"{platform.system()} {platform.release()}"
    )
    for kind, found in found_versions.items():
        print(f"  {kind:<12} " + ", ".join(f"{k} {v}" for k, v in found.items()))
    for source in sources:
        print(f"input: {source}")


def command_line(script: Path, argv: list[str]) -> str:
    """How to reproduce this run, from the repository root."""
    relative = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return " ".join(["python", str(relative), *argv])
