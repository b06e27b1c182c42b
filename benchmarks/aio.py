"""asyncio faces: throughput of ``async for`` and of AsyncStreamingClient's hooks.

Two comparisons, each client in a fresh interpreter against the same lean local server
(``_common.serve_connections``: the v2 input cycled, in large ``sendall``s):

* ``rxtweet.aio.iterate(stream.tweets)`` (``async for``) vs the synchronous reactive face
  (``stream.tweets.pipe(ops.take(N))`` with a counting observer): target >= 0.5x;
* rxtweet's ``AsyncStreamingClient`` (a counting ``async def on_tweet``) vs tweepy 4.12.1's
  ``tweepy.asynchronous.AsyncStreamingClient`` (aiohttp; the same hook, only the host
  changed): target >= 3x. tweepy runs in ``benchmarks/.venv-tweepy``; its async extra
  (aiohttp) is added there on first use.

Run from the repository root, dev venv active::

    python benchmarks/aio.py            # 200,000 tweets, best of 3
    python benchmarks/aio.py -n 50000 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    BEARER,
    Server,
    measure_once,
    print_machine,
    report,
    run_client,
    send_blocks,
    serve_connections,
    throughput_body,
)

SCRIPT = Path(__file__).resolve()
KINDS = ("rx_sync", "rx_aio", "rx_async_hooks", "tweepy_async")
PACKAGES = {
    "rx_sync": ("rxtweet", "reactivex"),
    "rx_aio": ("rxtweet", "reactivex"),
    "rx_async_hooks": ("rxtweet", "reactivex"),
    "tweepy_async": ("tweepy", "aiohttp"),
}


def serve(n: int) -> None:
    from end_to_end import load_dataset  # the dev venv only (the server's interpreter)

    # Twice what a client counts: the asyncio clients' readers run ahead of the consumer,
    # and one that reached the end of the body would reconnect (and hang up at once, when
    # the consumer stops), which this one-connection-at-a-time server cannot take.
    serve_connections(send_blocks(throughput_body(load_dataset("v2").lines, 2 * n)))


# --- clients ----------------------------------------------------------------------------------


def prepare(kind: str) -> Callable[[int, int, bool, list[int]], Callable[[], int]]:
    def setup(port: int, n: int, _latency: bool, _out: list[int]) -> Callable[[], int]:
        base_url = f"http://127.0.0.1:{port}"
        if kind == "rx_sync":
            from reactivex import operators as ops

            import rxtweet

            source = rxtweet.StreamingClient(BEARER, base_url=base_url).sample_stream().tweets

            def run_sync() -> int:
                counted = 0
                done = threading.Event()

                def on_next(_: Any) -> None:
                    nonlocal counted
                    counted += 1

                source.pipe(ops.take(n)).subscribe(
                    on_next, lambda _e: done.set(), lambda: done.set()
                )
                done.wait()
                return counted

            return run_sync

        if kind == "rx_aio":
            import rxtweet
            from rxtweet import aio

            tweets = rxtweet.StreamingClient(BEARER, base_url=base_url).sample_stream().tweets

            async def consume() -> int:
                counted = 0
                async for _tweet in aio.iterate(tweets):
                    counted += 1
                    if counted == n:
                        break
                return counted

            return lambda: asyncio.run(consume())

        if kind == "rx_async_hooks":
            from rxtweet.v2.async_client import AsyncStreamingClient

            class Counting(AsyncStreamingClient):
                count = 0

                async def on_tweet(self, tweet: Any) -> None:
                    self.count += 1
                    if self.count == n:
                        self.disconnect()

            async def hooks() -> int:
                client = Counting(BEARER, base_url=base_url)
                await client.sample()
                return client.count

            return lambda: asyncio.run(hooks())

        # tweepy 4.12.1, in its own venv: its AsyncStreamingClient, only the host changed.
        import tweepy.asynchronous.streaming as tweepy_streaming

        class LocalCounting(tweepy_streaming.AsyncStreamingClient):  # type: ignore[misc]
            count = 0

            async def _connect(self, method: str, endpoint: str, **kwargs: Any) -> None:
                # AsyncStreamingClient._connect in 4.12.1, with the host changed:
                #   url = f"https://api.twitter.com/2/tweets/{endpoint}/stream"
                url = f"{base_url}/2/tweets/{endpoint}/stream"
                headers = {"Authorization": f"Bearer {self.bearer_token}"}
                await tweepy_streaming.AsyncBaseStream._connect(
                    self, method, url, headers=headers, **kwargs
                )

            async def on_tweet(self, tweet: Any) -> None:
                # tweepy's disconnect() cancels the task, which stops at its next real
                # suspension: the tweets already buffered still reach this hook.
                if self.count < n:
                    self.count += 1
                    if self.count == n:
                        self.disconnect()

        async def tweepy_hooks() -> int:
            client = LocalCounting(BEARER)
            await client.sample()
            return int(client.count)

        return lambda: asyncio.run(tweepy_hooks())

    return setup


def client_main(argv: list[str]) -> None:
    kind, port, n = argv[0], int(argv[1]), int(argv[2])
    report(run_client(prepare(kind), PACKAGES[kind], kind, port, n, False, "--profile" in argv))


# --- orchestration ----------------------------------------------------------------------------


def tweepy_async_python() -> Path:
    """benchmarks/.venv-tweepy's python, with tweepy's async extra (aiohttp) installed."""
    from _tweepy_env import TWEEPY_VERSION, ensure_tweepy_python

    python = ensure_tweepy_python()
    probe = subprocess.run([str(python), "-c", "import aiohttp"], capture_output=True, check=False)
    if probe.returncode != 0:
        print("adding tweepy[async] (aiohttp) to the tweepy venv (first run only) ...", flush=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"tweepy[async]=={TWEEPY_VERSION}",
            ],
            check=True,
        )
    return python


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_serve"]:
        serve(int(argv[1]))
        return
    if argv[:1] == ["_client"]:
        client_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=200_000, help="tweets per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per client (best kept)")
    parser.add_argument("--no-tweepy", action="store_true", help="skip tweepy's client")
    args = parser.parse_args(argv)

    pythons = {kind: sys.executable for kind in KINDS}
    kinds = [k for k in KINDS if not (args.no_tweepy and k == "tweepy_async")]
    if "tweepy_async" in kinds:
        pythons["tweepy_async"] = str(tweepy_async_python())
    best: dict[str, float] = {}
    found: dict[str, dict[str, str]] = {}
    with Server(SCRIPT, [str(args.n)]) as server:
        for _ in range(args.repeat):
            for kind in kinds:
                run = measure_once(
                    server, SCRIPT, pythons[kind], [kind, str(server.port), str(args.n)], args.n
                )
                best[kind] = max(best.get(kind, 0.0), run.per_s)
                found[kind] = run.measure.versions
    print_machine(found, ["v2 input of benchmarks/end_to_end.py (load_dataset('v2'))"])
    print(f"{args.n:,} tweets per run, best of {args.repeat}")
    for kind in kinds:
        print(f"  {kind:<15} {best[kind]:>12,.0f} tweets/s")
    ratio = best["rx_aio"] / best["rx_sync"]
    print(f"async for / sync reactive:        {ratio:.2f}x (target >= 0.5x)")
    if "tweepy_async" in best:
        ratio = best["rx_async_hooks"] / best["tweepy_async"]
        print(f"AsyncStreamingClient vs tweepy:   {ratio:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
