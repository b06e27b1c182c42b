"""The CLI commands of issue 13 (``firehose``, ``sample10``, ``compliance``, ``likes``,
``labels``, ``activity``) against a real local :class:`FakeStreamServer`.

Each test runs ``rxtweet.cli.main`` in-process and reads the JSONL it wrote. Partitioned
streams are checked for X's semantics end to end: every message of the endpoint arrives
exactly once over all its partitions (also when some partitions are cut and reconnect),
and a partition out of range or missing is refused before anything connects.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from rxtweet.cli import build_parser, main
from rxtweet.cli.common import ExitCode
from rxtweet.cli.stream import format_partitions
from rxtweet.cli.streams import parse_partitions
from rxtweet.testing import (
    Attempt,
    FakeStreamServer,
    generate_compliance_messages,
    generate_like_messages,
    generate_v2_messages,
)

TOKEN = "cli-endpoints-token"

#: The CLI runs its own reader threads; the conftest's check does not apply.
CHECK_READER_THREADS = False


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def tweets(n: int, seed: int = 13) -> list[dict[str, Any]]:
    return list(islice(generate_v2_messages(seed=seed), n))


def fake(**kwargs: Any) -> FakeStreamServer:
    return FakeStreamServer(**{"bearer_token": TOKEN, "keepalive_interval": 0.2, **kwargs})


def api(server: FakeStreamServer) -> list[str]:
    return ["--base-url", server.url]


def cli(server: FakeStreamServer, *argv: str) -> int:
    """``rxtweet ARGV --base-url SERVER``; the token comes from the environment."""
    return main([*argv, *api(server)])


def written(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def stream_requests(server: FakeStreamServer, path: str) -> list[Any]:
    return [r for r in server.requests if r.path == path]


# --- --partitions ---------------------------------------------------------------------------


def test_partitions_syntax() -> None:
    assert parse_partitions("1-3,7,2") == (1, 2, 3, 7)
    assert parse_partitions("all") == "all"
    assert format_partitions((3, 1, 2, 20)) == "1-3,20"
    for bad in ("x", "3-1", "1,,2", "1-"):
        with pytest.raises(Exception, match=r"partition|range"):
            parse_partitions(bad)


def test_every_new_command_is_listed() -> None:
    parser = build_parser()
    help_text = parser.format_help()
    for name in ("firehose", "sample10", "compliance", "likes", "labels", "activity"):
        assert name in help_text


# --- tweet streams -------------------------------------------------------------------------


def test_firehose_20_partitions_write_every_message_once(tmp_path: Path) -> None:
    messages = tweets(200)
    out = tmp_path / "firehose.jsonl"
    with fake(messages=messages) as server:
        code = main(
            [
                "firehose",
                "--partitions",
                "1-20",
                "--limit",
                "200",
                "-o",
                str(out),
                "-q",
                *api(server),
            ]
        )
        requests = stream_requests(server, "/2/tweets/firehose/stream")
    assert code == ExitCode.OK
    ids = [doc["data"]["id"] for doc in written(out)]
    assert len(ids) == 200 and set(ids) == {m["data"]["id"] for m in messages}
    assert {r.partition for r in requests} == set(range(1, 21))


def test_firehose_cut_partitions_reconnect_alone_and_lose_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = tweets(120)
    out = tmp_path / "firehose.jsonl"
    with fake(messages=messages) as server:
        for partition in (3, 7):
            server.script(Attempt(messages=2, ending="cut"), partition=partition)
        code = cli(
            server,
            "firehose",
            "--partitions",
            "all",
            "--limit",
            "120",
            "-o",
            str(out),
            *api(server),
        )
        requests = stream_requests(server, "/2/tweets/firehose/stream")
    assert code == ExitCode.OK
    ids = [doc["data"]["id"] for doc in written(out)]
    assert sorted(ids) == sorted(m["data"]["id"] for m in messages)  # once each
    per_partition = [r.partition for r in requests]
    assert per_partition.count(3) == 2 and per_partition.count(7) == 2
    assert per_partition.count(1) == 1  # the others were not disturbed
    err = capsys.readouterr().err
    assert "partition 3: reconnect #1" in err and "partition 7: reconnect #1" in err
    assert "(120 tweets) written" in err


def test_firehose_lang_and_sample10(tmp_path: Path) -> None:
    en_out, decahose_out = tmp_path / "en.jsonl", tmp_path / "decahose.jsonl"
    # Finite sources, as many messages as --limit: every partition must be read to finish.
    endpoints = {"firehose_en": tweets(16, seed=1), "sample10": tweets(6, seed=2)}
    with fake(endpoint_messages=endpoints) as server:
        code = cli(server, "firehose", "--lang", "en", "--partitions", "all", "--limit", "16",
                   "-o", str(en_out), "-q")  # fmt: skip
        assert code == ExitCode.OK
        code = cli(server, "sample10", "--partitions", "1,2", "--limit", "6",
                   "--tweet-fields", "lang", "-o", str(decahose_out), "-q")  # fmt: skip
        assert code == ExitCode.OK
        en = stream_requests(server, "/2/tweets/firehose/stream/lang/en")
        decahose = stream_requests(server, "/2/tweets/sample10/stream")
    assert {r.partition for r in en} == set(range(1, 9))
    assert {r.partition for r in decahose} == {1, 2}
    assert all(r.query.get("tweet.fields") == ["lang"] for r in decahose)
    assert sorted(d["data"]["id"] for d in written(en_out)) == sorted(
        m["data"]["id"] for m in endpoints["firehose_en"]
    )
    assert len(written(decahose_out)) == 6


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["firehose", "--partitions", "21"], "1-20"),
        (["firehose", "--partitions", "0-3"], "1-20"),
        (["firehose", "--lang", "ja", "--partitions", "3"], "1-2"),
        (["firehose"], "1-20"),  # required
        (["likes", "sample10", "--partitions", "1-3"], "1-2"),
        (["compliance", "users", "--partitions", "5"], "1-4"),
    ],
)
def test_partitions_out_of_range_are_refused_before_connecting(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake() as server:
        code = cli(server, *argv, "-q")
        assert server.requests == []
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert named in err and "usage:" in err


def test_partitions_syntax_error_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample10", "--partitions", "one"]) == ExitCode.USAGE
    assert "--partitions" in capsys.readouterr().err


# --- compliance, likes, labels, activity ----------------------------------------------------


def test_compliance_tweets_reads_all_4_partitions_by_default(tmp_path: Path) -> None:
    out = tmp_path / "compliance.jsonl"
    events = list(islice(generate_compliance_messages("tweets", seed=4), 20))
    with fake(endpoint_messages={"compliance_tweets": events}) as server:
        assert cli(server, "compliance", "tweets", "--limit", "20", "-o", str(out), "-q") == 0
        requests = stream_requests(server, "/2/tweets/compliance/stream")
    assert {r.partition for r in requests} == {1, 2, 3, 4}
    assert sorted(map(json.dumps, written(out))) == sorted(map(json.dumps, events))


def test_compliance_users_and_likes(tmp_path: Path) -> None:
    users_out, likes_out = tmp_path / "users.jsonl", tmp_path / "likes.jsonl"
    with fake() as server:
        code = cli(server, "compliance", "users", "--partitions", "2", "--limit", "3",
                   "-o", str(users_out), "-q")  # fmt: skip
        assert code == ExitCode.OK
        assert cli(server, "compliance", "likes", "--limit", "3", "-o", str(likes_out)) == 0
        users = stream_requests(server, "/2/users/compliance/stream")
        likes = stream_requests(server, "/2/likes/compliance/stream")
    assert [r.partition for r in users] == [2]
    assert likes and all("partition" not in r.query for r in likes)
    assert all("user_" in next(iter(d["data"])) for d in written(users_out) if "data" in d)
    assert [next(iter(d["data"])) for d in written(likes_out)] == ["delete"] * 3


def test_likes_firehose_with_fields(tmp_path: Path) -> None:
    out = tmp_path / "likes.jsonl"
    likes = list(islice(generate_like_messages(seed=5), 40))
    with fake(endpoint_messages={"likes_firehose": likes}) as server:
        code = cli(server, "likes", "firehose", "--partitions", "1-20", "--limit", "40",
                   "--like-with-tweet-author-fields", "created_at,liked_tweet_id",
                   "-o", str(out), "-q")  # fmt: skip
        requests = stream_requests(server, "/2/likes/firehose/stream")
    assert code == ExitCode.OK
    assert {r.partition for r in requests} == set(range(1, 21))
    assert all(
        r.query.get("like_with_tweet_author.fields") == ["created_at,liked_tweet_id"]
        for r in requests
    )
    ids = [d["data"]["id"] for d in written(out)]
    assert sorted(ids) == sorted(m["data"]["id"] for m in likes)


def test_likes_unknown_field_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with fake() as server:
        code = main(
            [
                "likes",
                "sample10",
                "--partitions",
                "all",
                "--like-with-tweet-author-fields",
                "creted_at",
                *api(server),
            ]
        )
        assert server.requests == []
    assert code == ExitCode.USAGE
    assert "created_at" in capsys.readouterr().err  # the "did you mean"


def test_labels_and_activity(tmp_path: Path) -> None:
    labels, activity = tmp_path / "labels.jsonl", tmp_path / "activity.jsonl"
    with fake() as server:
        assert cli(server, "labels", "--limit", "5", "-o", str(labels), "-q") == 0
        assert cli(server, "activity", "--limit", "5", "-o", str(activity), "-q") == 0
    assert sum("data" in d for d in written(labels)) == 5
    assert sum("data" in d for d in written(activity)) == 5


def test_activity_subscriptions_add_list_delete(capsys: pytest.CaptureFixture[str]) -> None:
    with fake() as server:
        assert (
            main(
                [
                    "activity",
                    "subscriptions",
                    "add",
                    "profile.update.bio",
                    "--user-id",
                    "2244994945",
                    "--tag",
                    "bios",
                    *api(server),
                ]
            )
            == 0
        )
        added = capsys.readouterr().out
        assert added.startswith("+ ") and "profile.update.bio" in added and "[bios]" in added
        assert cli(server, "activity", "subscriptions", "list", "--json") == 0
        [subscription] = json.loads(capsys.readouterr().out)
        assert subscription["filter"] == {"user_id": "2244994945"}
        sub_id = str(subscription.get("subscription_id", subscription.get("id")))
        assert cli(server, "activity", "subscriptions", "delete", sub_id) == 0
        assert capsys.readouterr().out == f"- {sub_id}\n"
        assert cli(server, "activity", "subscriptions", "list") == 0
        assert "no activity subscriptions" in capsys.readouterr().err


def test_activity_subscription_needs_one_filter(capsys: pytest.CaptureFixture[str]) -> None:
    with fake() as server:
        code = cli(server, "activity", "subscriptions", "add", "follow.follow")
        assert server.requests == []
    assert code == ExitCode.USAGE
    assert "--user-id" in capsys.readouterr().err


def test_activity_token_before_the_subcommand_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # argparse copies a sub-parser's defaults over the parent's values: the SUPPRESSed
    # defaults keep `activity --bearer-token T subscriptions list` working.
    monkeypatch.delenv("X_BEARER_TOKEN")
    with fake() as server:
        code = main(
            ["activity", "--bearer-token", TOKEN, "--base-url", server.url, "subscriptions", "list"]
        )
    assert code == ExitCode.OK
