"""Hostile review of commit ea3e34d: :class:`~rxtweet.v2.models.StreamResponse` no longer
overrides ``__setattr__``/``__delattr__``; its slots are private (``_data``, ``_doc``,
``_errors``, ``_includes``, ``_matching_rules``), ``data`` is a getter-only property, and
``to_stream_response`` stores ``_data``/``_doc`` with plain attribute stores.

Attacked as a careless user (stores and deletes of the public fields and of new names, a
second ``__init__``, a half-built instance), a subclasser (with and without ``__slots__``,
with a ``__setattr__`` of its own), every copy and pickle of lazy and built responses, the
named tuple's protocol and introspection, racing threads, and the hook face and substreams over
a real local server.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from support import Shouting, reader_threads, wait_until

from rxtweet import ReconnectPolicy, StreamingClient, StreamResponse, StreamRule, Tweet, User
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.v2.convert import is_v2_data, to_stream_response

TOKEN = "AAAA-response-slots-attack-token"
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05, rate_limit_wait_start=0.1)
FIELDS = StreamResponse._fields
PARTS = ("_includes", "_errors", "_matching_rules")  # the lazily converted slots

FULL: dict[str, Any] = {
    "data": {"id": "1377650090978992134", "text": "hello", "author_id": "41783881"},
    "includes": {
        "users": [{"id": "41783881", "name": "Gary", "username": "gary"}],
        "topics": [{"id": "t1"}],
    },
    "errors": [{"title": "Not Found Error", "resource_id": "9"}],
    "matching_rules": [{"id": 1377649934414049282, "tag": "cats"}],
}
SYSTEM: dict[str, Any] = {
    "errors": [{"title": "operational-disconnect", "disconnect_type": "Operational"}]
}


class Slotted(StreamResponse):
    """A subclass as a tweepy user writes one on a named tuple (module level: picklable)."""

    __slots__ = ()


class WithDict(StreamResponse):
    """A subclass without ``__slots__``: instances get a ``__dict__``."""


class Frozen(StreamResponse):
    """A subclass that refuses every store of its own (the pre-ea3e34d base did just that)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Frozen refuses {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Frozen refuses deleting {name!r}")


class Watching(StreamResponse):
    """A subclass whose ``__setattr__`` records every store and passes it on."""

    __slots__ = ()
    stores: list[str] = []  # noqa: RUF012 - class-wide record, on purpose

    def __setattr__(self, name: str, value: Any) -> None:
        Watching.stores.append(name)
        super().__setattr__(name, value)


def parsed(doc: dict[str, Any]) -> StreamResponse:
    """A lazy response of a fresh copy of ``doc`` (nothing converted yet)."""
    response = to_stream_response(orjson.loads(orjson.dumps(doc)))
    assert not any(hasattr_slot(response, name) for name in PARTS)
    return response


def hasattr_slot(response: StreamResponse, name: str) -> bool:
    """Whether slot ``name`` holds a value (read through the slot, never converting)."""
    try:
        StreamResponse.__dict__[name].__get__(response, StreamResponse)
    except AttributeError:
        return False
    return True


def built() -> StreamResponse:
    return StreamResponse(
        Tweet({"id": "5", "text": "made"}), {"users": []}, [{"title": "x"}], [StreamRule("v")]
    )


#: name -> (a fresh response of that kind, whether to read its parts first)
KINDS: dict[str, Callable[[], StreamResponse]] = {
    "parsed-unread": lambda: parsed(FULL),
    "parsed-read": lambda: read_all(parsed(FULL)),
    "system-unread": lambda: parsed(SYSTEM),
    "default-payload": lambda: parsed({"data": {"id": "20", "text": "hi"}}),
    "built": built,
    "slotted-subclass": lambda: Slotted(*built()),
    "dict-subclass": lambda: WithDict(*built()),
}


def read_all(response: StreamResponse) -> StreamResponse:
    tuple(response)
    return response


def snapshot(response: StreamResponse) -> tuple[Any, ...]:
    """What each slot holds, by identity (a part not converted yet: the marker)."""
    held: list[object] = []
    for name in StreamResponse.__slots__:
        try:
            held.append(id(StreamResponse.__dict__[name].__get__(response, StreamResponse)))
        except AttributeError:
            held.append("unset")
    return tuple(held)


# --- 1. the careless user: stores and deletes ---------------------------------------------------

REFUSED = (
    *FIELDS,
    "other",
    "tweet",
    "__dict__",
    "_fields",
    "_field_defaults",
    "__match_args__",
    "__slots__",
    "_convert",
    "_asdict",
    "_replace",
)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "dict-subclass"])
def test_stores_and_deletes_of_fields_and_new_names_raise_and_change_nothing(kind: str) -> None:
    response = KINDS[kind]()
    before = snapshot(response)
    for name in REFUSED:
        values: tuple[object, ...] = (None, {}, [], Tweet({"id": "666"}))
        for value in values:
            with pytest.raises(AttributeError):
                setattr(response, name, value)
            with pytest.raises(AttributeError):
                object.__setattr__(response, name, value)
        with pytest.raises(AttributeError):
            delattr(response, name)
        with pytest.raises(AttributeError):
            object.__delattr__(response, name)
    # Not a slot written, not a part converted by a refused store.
    assert snapshot(response) == before
    assert tuple(response) == tuple(KINDS[kind]())


def test_a_subclass_without_slots_takes_new_names_but_never_the_fields() -> None:
    # As a tweepy named tuple's subclass without __slots__ (it has a __dict__ too).
    response = WithDict(*built())
    before = snapshot(response)
    response.note = "mine"  # type: ignore[attr-defined]
    assert vars(response) == {"note": "mine"}
    for name in FIELDS:
        with pytest.raises(AttributeError):
            setattr(response, name, None)
        with pytest.raises(AttributeError):
            delattr(response, name)
        # The __dict__ is no back door: a property is a data descriptor, it wins.
        response.__dict__[name] = "forged"
        assert getattr(response, name) != "forged"
    assert snapshot(response) == before


def test_the_public_fields_are_getter_only_properties_and_no_slot_is_public() -> None:
    assert all(name.startswith("_") for name in StreamResponse.__slots__)
    assert set(StreamResponse.__slots__) == {
        "_data",
        "_doc",
        "_errors",
        "_includes",
        "_matching_rules",
    }
    for name in FIELDS:
        field = inspect.getattr_static(StreamResponse, name)
        assert isinstance(field, property), name
        assert field.fset is None and field.fdel is None, name
        assert field.__doc__, name
    # A documented field: the docs tools (help, griffe's inspection) show it.
    assert "system message" in (inspect.getdoc(StreamResponse.data) or "")


@pytest.mark.parametrize("kind", list(KINDS))
def test_init_called_again_is_refused_and_changes_nothing(kind: str) -> None:
    response = KINDS[kind]()
    before = snapshot(response)
    for args in ((None, {}, [], []), tuple(built())):
        with pytest.raises(AttributeError, match="read-only"):
            response.__init__(*args)  # type: ignore[misc]
        with pytest.raises(AttributeError, match="read-only"):
            StreamResponse.__init__(response, *args)
    assert snapshot(response) == before


def test_a_half_built_response_has_no_fields_and_can_be_built_once() -> None:
    half = object.__new__(StreamResponse)
    for name in FIELDS:
        assert not hasattr(half, name), name
        assert getattr(half, name, "absent") == "absent", name
    with pytest.raises(AttributeError):
        half.data  # noqa: B018 - the read is the test
    with pytest.raises(AttributeError):
        tuple(half)
    with pytest.raises(AttributeError):
        copy.copy(half)
    with pytest.raises((AttributeError, pickle.PicklingError)):
        pickle.dumps(half)
    # Introspection of a half-built response does not raise either.
    assert set(FIELDS) <= set(dir(half))
    assert not {name for name, _ in inspect.getmembers(half)} & set(FIELDS)
    # The failed reads left the conversion lock free: another thread converts at once.
    other = parsed(FULL)
    got: list[Any] = []
    worker = threading.Thread(target=lambda: got.append(other.includes))
    worker.start()
    worker.join(2)
    assert got and isinstance(got[0]["users"][0], User)
    # __init__ builds it, once.
    half.__init__(None, {}, [], [])  # type: ignore[misc]
    assert tuple(half) == (None, {}, [], [])
    with pytest.raises(AttributeError, match="read-only"):
        half.__init__(None, {"x": 1}, [], [])  # type: ignore[misc]
    assert half.includes == {}


# --- 2. subclassers ---------------------------------------------------------------------------


def test_a_subclass_whose_setattr_passes_stores_on_builds_copies_and_stays_read_only() -> None:
    Watching.stores.clear()
    mine = Watching(*built())
    assert tuple(mine) == tuple(built())
    for name in FIELDS:
        with pytest.raises(AttributeError):
            setattr(mine, name, None)
    again = copy.deepcopy(mine)
    assert type(again) is Watching and again == mine
    assert type(mine._replace(data=None)) is Watching


# Fixed (was a regression of ea3e34d): __init__ stored its slots with self._x = ..., so a
# subclass whose own __setattr__ refuses stores could no longer be built, copied or pickled.


def test_a_subclass_with_a_refusing_setattr_can_be_built() -> None:
    mine = Frozen(None, {}, [{"title": "x"}], [])
    assert tuple(mine) == (None, {}, [{"title": "x"}], [])


def test_a_subclass_with_a_refusing_setattr_can_be_copied_and_made() -> None:
    mine = Frozen._make([None, {}, [], []])
    assert type(copy.copy(mine)) is Frozen
    assert type(pickle.loads(pickle.dumps(mine))) is Frozen


# Fixed (older): __reduce__ gave only the four fields, so copies and pickles of a subclass
# instance dropped its own __dict__ (tweepy's named tuple subclass keeps it).


def test_copies_of_a_subclass_keep_its_own_attributes() -> None:
    mine = WithDict(*built())
    mine.note = "mine"  # type: ignore[attr-defined]
    for made in (copy.copy(mine), copy.deepcopy(mine), pickle.loads(pickle.dumps(mine))):
        assert made == mine and vars(made) == {"note": "mine"}


def test_a_subclass_can_extend_a_field_through_super() -> None:
    mine = Shouting(Tweet({"id": "1", "text": "hi"}), {}, [], [])
    assert mine.data is not None and mine.data.text == "HI"
    with pytest.raises(AttributeError):
        mine.data = None  # type: ignore[misc]


# --- 3. copies, pickles and the named tuple's protocol ----------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("read_first", [False, True])
def test_every_copy_and_pickle_protocol_gives_an_equal_read_only_response(
    kind: str, read_first: bool
) -> None:
    response = KINDS[kind]()
    if read_first:
        read_all(response)
    expected = tuple(KINDS[kind]())
    copies = {
        "copy": copy.copy(response),
        "deepcopy": copy.deepcopy(response),
        **{
            f"pickle-{p}": pickle.loads(pickle.dumps(response, p))
            for p in range(pickle.HIGHEST_PROTOCOL + 1)
        },
    }
    for how, made in copies.items():
        assert type(made) is type(response), how
        assert made == response and tuple(made) == expected, how
        assert [type(part) for part in made] == [type(part) for part in expected], how
        assert made.matching_rules == expected[3] and made.data == expected[0], how
        for name in FIELDS:
            with pytest.raises(AttributeError):
                setattr(made, name, None)
        with pytest.raises(AttributeError):
            made.__init__(None, {}, [], [])  # type: ignore[misc]
    # A shallow copy shares the very parts; a deep one shares none of the containers.
    assert all(a is b for a, b in zip(copies["copy"], response, strict=True))
    assert copies["deepcopy"].errors is not response.errors


def test_replace_make_and_asdict_of_a_lazy_response() -> None:
    response = parsed(FULL)
    as_dict = response._asdict()
    assert list(as_dict) == list(FIELDS)
    assert all(as_dict[name] is getattr(response, name) for name in FIELDS)
    replaced = response._replace(data=None)
    assert replaced.data is None and response.data is not None
    assert replaced.includes is response.includes
    assert replaced.matching_rules is response.matching_rules
    for private in ("_data", "_doc", "_includes"):
        with pytest.raises(ValueError, match="unexpected field names"):
            response._replace(**{private: None})
    made = StreamResponse._make(response)
    assert made == response and all(a is b for a, b in zip(made, response, strict=True))
    assert type(Slotted._make(response)) is Slotted
    with pytest.raises(AttributeError):
        made.data = None  # type: ignore[misc]


def test_pattern_matching_on_lazy_and_subclass_responses() -> None:
    for response in (parsed(FULL), Slotted(*parsed(FULL))):
        match response:
            case StreamResponse(data=Tweet() as tweet, includes={"users": [User() as user]}):
                assert tweet.id == 1377650090978992134 and user.username == "gary"
            case _:
                pytest.fail("the keyword pattern did not match")
        match response:
            case StreamResponse(_, _, [{"title": title}], [StreamRule(tag=tag)]):
                assert (title, tag) == ("Not Found Error", "cats")
            case _:
                pytest.fail("the positional pattern did not match")
    match parsed(SYSTEM):
        case StreamResponse(data=None, errors=[{"title": "operational-disconnect"}]):
            pass
        case _:
            pytest.fail("a system message did not match")


def test_equality_and_hash_across_lazy_built_and_subclass_responses() -> None:
    lazy = parsed(SYSTEM)
    same = StreamResponse(None, {}, SYSTEM["errors"], [])
    assert (
        lazy == same == Slotted(None, {}, SYSTEM["errors"], []) == (None, {}, SYSTEM["errors"], [])
    )
    assert lazy != parsed(FULL) and lazy != same._replace(errors=[])
    for response in (lazy, same, parsed(FULL)):
        with pytest.raises(TypeError, match="unhashable"):
            hash(response)
    hashable = StreamResponse(None, (), (), ())  # type: ignore[arg-type]
    assert hash(hashable) == hash((None, (), (), ()))


def test_dir_vars_and_getmembers_see_the_fields_of_a_lazy_response() -> None:
    response = parsed(FULL)
    assert set(FIELDS) <= set(dir(response))
    with pytest.raises(TypeError):
        vars(response)
    assert not hasattr(response, "__dict__")
    members = dict(inspect.getmembers(response))
    assert all(members[name] is getattr(response, name) for name in FIELDS)
    assert members["includes"] is response.includes  # converted once, kept
    static = dict(inspect.getmembers_static(parsed(FULL)))
    assert all(isinstance(static[name], property) for name in FIELDS)
    assert is_v2_data(response) and not is_v2_data(parsed(SYSTEM))


# --- 4. racing threads ------------------------------------------------------------------------


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def race(response: StreamResponse) -> tuple[list[tuple[Any, ...]], list[BaseException], int]:
    """8 threads' first reads of ``response`` all at once (a barrier), while a ninth stores
    into its fields: what each reader got, what failed, how many stores were refused."""
    barrier = threading.Barrier(9)
    seen: list[tuple[Any, ...]] = []
    failures: list[BaseException] = []
    refused: list[str] = []

    def read(slot: int) -> None:
        try:
            barrier.wait(2)
            # Half through the properties, half through the tuple face.
            if slot % 2:
                seen.append((response.data, response.includes, response.matching_rules))
            else:
                data, includes, _errors, rules = response
                seen.append((data, includes, rules))
        except BaseException as exc:
            failures.append(exc)

    def meddle() -> None:
        # A careless thread storing into the fields during the first reads.
        barrier.wait(2)
        for _ in range(50):
            for name in ("includes", "matching_rules", "data"):
                try:
                    setattr(response, name, {})
                except AttributeError:
                    refused.append(name)

    workers = [threading.Thread(target=read, args=(n,)) for n in range(8)]
    workers.append(threading.Thread(target=meddle))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(5)
    return seen, failures, len(refused)


@pytest.mark.usefixtures("tiny_switch_interval")
def test_eight_threads_reading_one_lazy_response_get_the_identical_objects() -> None:
    for _round in range(25):
        response = parsed(FULL)
        seen, failures, refused = race(response)
        assert not failures and len(seen) == 8 and refused == 150
        first = seen[0]
        assert all(a is b for parts in seen for a, b in zip(parts, first, strict=True))
        assert first == (response.data, response.includes, response.matching_rules)
        assert isinstance(first[1]["users"][0], User)
        assert first[2] == [StreamRule(None, "cats", "1377649934414049282")]


# --- 5. over a real local server --------------------------------------------------------------


def fake(messages: list[Any]) -> FakeStreamServer:
    return FakeStreamServer(messages=messages, bearer_token=TOKEN, fields="all", match_rules=False)


class Hooks(StreamingClient):
    """Every part hook overridden; each also tries to write the response it came from."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[tuple[str, Any]] = []
        self.refused: list[str] = []

    def on_tweet(self, tweet: Tweet) -> None:
        self.calls.append(("tweet", tweet))

    def on_includes(self, includes: dict[str, Any]) -> None:
        self.calls.append(("includes", includes))

    def on_errors(self, errors: list[dict[str, Any]]) -> None:
        self.calls.append(("errors", errors))

    def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        self.calls.append(("matching_rules", matching_rules))

    def on_response(self, response: StreamResponse) -> None:
        self.calls.append(("response", response))
        for name in (*FIELDS, "other"):
            try:
                setattr(response, name, None)
            except AttributeError:
                self.refused.append(name)
        try:
            response.__init__(None, {}, [], [])  # type: ignore[misc]
        except AttributeError:
            self.refused.append("__init__")


def test_the_hook_face_over_a_real_server_delivers_the_response_s_own_objects() -> None:
    messages = [FULL, SYSTEM, {"data": {"id": "7", "text": "alone"}}]
    client = Hooks(TOKEN, reconnect=FAST)
    with fake(messages) as server:
        server.script(Attempt(messages=len(messages), ending="hold"))
        client.base_url = server.url
        thread = client.filter(threaded=True)
        assert thread is not None
        try:
            assert wait_until(lambda: [n for n, _ in client.calls].count("response") == 3)
        finally:
            client.disconnect()
            thread.join(3)
    assert not thread.is_alive() and wait_until(lambda: not reader_threads(), timeout=2.0)
    names = [name for name, _ in client.calls]
    assert names == [
        *("tweet", "includes", "errors", "matching_rules", "response"),
        *("errors", "response"),
        *("tweet", "response"),
    ]
    values = [value for _, value in client.calls]
    first = values[4]
    assert type(first) is StreamResponse
    assert values[1]["users"][0].username == "gary" and values[0].id == 1377650090978992134
    assert first.data is values[0] and first.includes is values[1]
    assert first.errors is values[2] and first.matching_rules is values[3]
    assert values[6].data is None and values[6].errors is values[5]
    assert values[8].data is values[7] and values[7].id == 7
    assert client.refused == [*FIELDS, "other", "__init__"] * 3
    assert first == (values[0], values[1], values[2], values[3])  # the failed stores did nothing


def test_substreams_over_a_real_server_share_the_response_s_objects() -> None:
    messages = [FULL, SYSTEM, {"data": {"id": "7", "text": "alone"}}, FULL]
    with fake(messages) as server:
        server.script(Attempt(messages=len(messages), ending="hold"))
        stream = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST).filter_stream()
        tweets: list[Tweet] = []
        includes: list[dict[str, Any]] = []
        responses: list[StreamResponse] = []
        with stream.hold():
            subs = [
                stream.tweets.subscribe(tweets.append),
                stream.includes.subscribe(includes.append),
                stream.responses.subscribe(responses.append),
            ]
        try:
            assert wait_until(lambda: len(responses) == len(messages))
        finally:
            for sub in subs:
                sub.dispose()
    with_data = [r for r in responses if r.data is not None]
    assert [t.id for t in tweets] == [1377650090978992134, 7, 1377650090978992134]
    assert all(t is r.data for t, r in zip(tweets, with_data, strict=True))
    assert all(i is r.includes for i, r in zip(includes, [with_data[0], with_data[2]], strict=True))
    for response in responses:
        assert type(response) is StreamResponse
        before = snapshot(response)
        for name in FIELDS:
            with pytest.raises(AttributeError):
                setattr(response, name, None)
        assert snapshot(response) == before
    assert responses[1] == (None, {}, SYSTEM["errors"], [])
