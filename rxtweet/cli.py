"""The ``rxtweet`` command line.

``rxtweet demo`` streams from a built-in local fake of X's API and prints tweets: no
credentials, no network.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from reactivex import Observable
    from reactivex import operators as ops

    from .models import Tweet
    from .testing import Attempt, FakeStreamServer, generate_v2_messages
    from .v2 import StreamingClient

    out = sys.stdout
    token = "demo-bearer-token"  # noqa: S105 - the local fake server's token, not a secret

    def show(tweet: Tweet) -> None:
        text = tweet.text.replace("\n", " ")
        print(f"{tweet.id}  [{tweet.lang or '??'}]  {text[:90]}", file=out)

    messages = generate_v2_messages(seed=args.seed)
    with FakeStreamServer(messages=messages, bearer_token=token) as server:
        server.script(Attempt(rate=args.rate))
        client = StreamingClient(token, base_url=server.url)
        stream = client.sample_stream(tweet_fields=["lang", "created_at"])
        shown: Observable[Tweet] = stream.tweets.pipe(ops.take(args.count), ops.do_action(show))
        total = shown.pipe(ops.count()).run()
    print(f"-- {total} tweets from the local fake X server at {server.url}", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rxtweet", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="stream from a built-in local fake server (offline)")
    demo.add_argument("--count", type=int, default=20, help="tweets to stream (default 20)")
    demo.add_argument("--rate", type=float, default=10.0, help="tweets per second (default 10)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the generated tweets")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxtweet`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))
