"""Issue 12, API v2 as a package: what moved keeps working from its old paths, the pieces
that were written several times now exist once, and the new seams are reachable.

(rxtweet.v2.{client,stream,params,models,convert,rest,rules}; rxtweet.models, rxtweet.fields
and the v2 half of rxtweet.parse are thin re-exports.)
"""

from __future__ import annotations

import ast
import pickle
import threading
import typing
from pathlib import Path

import pytest
import requests
import responses
from reactivex import operators as ops

import rxtweet
from rxtweet import fields, models, parse
from rxtweet.errors import NotFound, StreamConnectionError
from rxtweet.substreams import Substreams
from rxtweet.testing import FakeStreamServer
from rxtweet.v2 import (
    DEFAULT_STALL_TIMEOUT,
    ENDPOINTS,
    FIELD_PARAMS,
    StreamingClient,
    TweetStream,
    rules_of_doc,
    stream_params,
)
from rxtweet.v2 import convert as v2_convert
from rxtweet.v2 import models as v2_models
from rxtweet.v2 import params as v2_params
from rxtweet.v2.rest import RestCalls

TOKEN = "layout-token"
ROOT = Path(rxtweet.__file__).resolve().parent


# --- old paths: the same objects -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(parse._MOVED_TO_V2))
def test_parse_re_exports_the_v2_conversion_lazily(name: str) -> None:
    assert getattr(parse, name) is getattr(v2_convert, name)
    assert name in parse.__all__


def test_parse_imports_no_model() -> None:
    """parse.py knows lines and JSON only: no model import at module level (the v2 names are
    imported on first access)."""
    tree = ast.parse((ROOT / "parse.py").read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not {m for m in imported if "models" in m or m.startswith("v2")}, imported
    with pytest.raises(AttributeError, match="no_such_name"):
        parse.no_such_name  # noqa: B018


def test_models_and_fields_shims_are_the_new_objects() -> None:
    for name in models.__all__:
        if name in ("Field", "_Model", "_short"):
            continue
        assert getattr(models, name) is getattr(v2_models, name), name
    for name in fields.__all__:
        assert getattr(fields, name) is getattr(v2_params, name), name
    assert fields.InvalidStreamParameter is rxtweet.errors.InvalidStreamParameter
    assert rxtweet.Tweet is v2_models.Tweet


def test_a_tweet_pickled_under_the_old_module_path_still_loads() -> None:
    tweet = v2_models.Tweet({"id": "1", "text": "old pickle"})
    new = pickle.dumps(tweet, protocol=2)
    assert b"rxtweet.v2.models" in new  # protocol 2 names the class as "module\nname\n"
    old = new.replace(b"crxtweet.v2.models\n", b"crxtweet.models\n")
    assert b"rxtweet.v2.models" not in old
    assert pickle.loads(old) == tweet and pickle.loads(old).text == "old pickle"


# --- written once ----------------------------------------------------------------------------


def test_one_rule_conversion_for_streams_rest_and_sync() -> None:
    """A numeric id beyond 2**53 (2021 streams) becomes the same str on every path."""
    raw = {"id": 1377649934414049282, "value": "cats", "tag": "t"}
    from_stream = v2_convert.to_stream_response({"matching_rules": [raw]}).matching_rules[0]
    from_rest = v2_convert.to_response({"data": [raw]}, rxtweet.StreamRule).data[0]
    from_sync = rules_of_doc({"data": [raw]})[0]
    assert from_stream == from_rest == from_sync == v2_convert.rule_of(raw)
    assert from_stream == rxtweet.StreamRule("cats", "t", "1377649934414049282")
    assert type(from_sync) is rxtweet.StreamRule


def test_field_params_is_the_one_list_in_the_cli_order() -> None:
    assert list(FIELD_PARAMS) == [
        "tweet_fields",
        "user_fields",
        "expansions",
        "media_fields",
        "place_fields",
        "poll_fields",
    ]
    assert set(FIELD_PARAMS) == set(v2_params.FIELD_VALUES)
    assert stream_params({"poll_fields": ["id"], "tweet_fields": "lang"}) == {
        "poll.fields": "id",
        "tweet.fields": "lang",
    }
    with pytest.raises(rxtweet.InvalidStreamParameter, match=r"user_fields \(user\.fields\)"):
        stream_params({"user_fields": ["usernme"]})


def test_tweet_stream_is_a_declaration_on_substreams() -> None:
    client = StreamingClient(TOKEN, base_url="http://127.0.0.1:9")
    stream = client.sample_stream()
    assert isinstance(stream, Substreams) and type(stream) is TweetStream
    assert repr(stream).startswith("<TweetStream ")
    # What TweetStream itself declares: only its substreams.
    own = {n for n, v in vars(TweetStream).items() if callable(v) and not n.startswith("__")}
    assert own == set()


def test_both_clients_type_sample_and_filter_alike() -> None:
    for method in (StreamingClient.sample, StreamingClient.filter):
        hints = typing.get_type_hints(method)
        assert hints["return"] == threading.Thread | None
        assert hints["return"] == typing.get_type_hints(rxtweet.Stream.sample)["return"]


# --- the seams reach the client --------------------------------------------------------------


def test_client_defaults_come_from_the_package() -> None:
    client = StreamingClient(TOKEN)
    assert client.options.stall_timeout == DEFAULT_STALL_TIMEOUT == 21.0
    assert client.base_url == rxtweet.v2.DEFAULT_BASE_URL
    request = client.filter_stream().connection.request
    assert request.url == "https://api.x.com" + ENDPOINTS["search"]
    assert request.headers["User-Agent"].startswith("rxtweet/")
    assert "layout-token" not in repr(client) + repr(request)


def test_max_line_is_reachable_from_the_client() -> None:
    """Before the transport options, a client could not set max_line: a 3 KB tweet line
    with max_line=1024 now is dropped by the transport and counted, the next one arrives."""
    long_tweet = {"data": {"id": "1", "text": "x" * 3000}}
    short_tweet = {"data": {"id": "2", "text": "short"}}
    with FakeStreamServer(messages=[long_tweet, short_tweet], keepalive_interval=0.05) as srv:
        client = StreamingClient(TOKEN, base_url=srv.url, max_line=1024, connect_timeout=1.0)
        assert client.options.max_line == 1024 and client.options.connect_timeout == 1.0
        stream = client.sample_stream()
        tweets = stream.tweets.pipe(ops.take(1), ops.to_list()).run()
    assert [t.id for t in tweets] == [2]
    assert stream.stats.too_long == 1


# --- REST plumbing, reusable outside the rules ----------------------------------------------


class _Probe(RestCalls):
    """The smallest client RestCalls asks for (what an activity-subscription client will be)."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.proxies: dict[str, str] = {}
        self.verify = True
        self.bearer_token = TOKEN
        self.wait_on_rate_limit = True
        self.slept: list[float] = []

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}"}

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_rest_calls_work_for_any_endpoint() -> None:
    url = "https://api.x.com/2/account_activity/subscriptions"
    probe = _Probe()
    with responses.RequestsMock() as mocked:
        mocked.get(url, status=429, json={"title": "Too Many Requests"})
        mocked.get(url, status=200, json={"data": {"subscribed": True}})
        mocked.post(url, status=404, json={"title": "Not Found Error", "detail": "nope"})
        assert probe._call("GET", url).json() == {"data": {"subscribed": True}}
        with pytest.raises(NotFound) as info:
            probe._call("POST", url, json={})
    assert probe.slept == [60.0]  # no reset header: a minute, as tweepy
    assert "POST https://api.x.com/2/account_activity/subscriptions" in str(info.value)


def test_rest_network_errors_name_no_credential() -> None:
    probe = _Probe()
    url = "http://user:secret@127.0.0.1:9/2/x"
    with pytest.raises(StreamConnectionError) as info:
        probe._call("GET", url)
    text = str(info.value)
    assert "secret" not in text and TOKEN not in text
    assert text.startswith("GET http://<redacted>@127.0.0.1:9/2/x: ")


def test_the_v2_modules_log_on_the_package_logger() -> None:
    for module in ("client", "params", "rest"):
        source = (ROOT / "v2" / f"{module}.py").read_text(encoding="utf-8")
        assert "logging.getLogger(__package__)" in source, module
    assert StreamingClient.__module__ == "rxtweet.v2.client"
