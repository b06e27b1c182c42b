"""Hostile review of the per-message hot path's inlined checks (issue 17, speed):

1. ``rxtweet.v2.convert._check_parts``: the ``matching_rules`` check is a loop, not
   ``frozenset.issuperset(map(type, map(dict.get, rules, repeat("id"))))``;
2. ``rxtweet.v1.convert._watching_unknown``: a status with an integer id is made without
   ``_classify`` (``object.__new__`` and ``.data``), the unknown streak reset;
3. ``StreamingClient._dispatch``: ``_dispatch_parts`` inlined (a hook is overridden when in
   ``vars(self)`` or the class attribute is not StreamingClient's own; a part is read only
   when non-empty; a response built by hand has its parts read through its attributes);
4. ``rxtweet.parse.batch_parser``: the share's value calls worked out once per change.

Each of 1-3 is compared with the pre-change code, inlined here as the reference (the
``_old_*`` functions, copied from the commit before the change): the same result, or the same
exception type and message, the same log records, the same hooks in the same order. 4 is
compared end to end, over a real server on 127.0.0.1, with the share's own way (the
``multicast_of`` patch of ``tests/test_attack_value_delivery.py``).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Any

import pytest
from delivery_harness import Feed, Hooks, Log, Serve, full, tweet
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import log_records

from rxtweet import StreamingClient
from rxtweet import connection as connection_module
from rxtweet import parse as parse_module
from rxtweet.parse import Parsed
from rxtweet.v1 import convert as v1_convert
from rxtweet.v1.models import Status, UnknownNotice
from rxtweet.v2 import client as client_module
from rxtweet.v2 import convert as v2_convert
from rxtweet.v2.models import StreamResponse, StreamRule, Tweet
from rxtweet.v2.stream import TweetStream

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

Outcome = tuple[Any, ...]


def outcome(call: Callable[[], Any]) -> Outcome:
    """``("ok", value)`` or ``("raised", type, message)``."""
    try:
        return ("ok", call())
    except Exception as exc:  # any exception is an outcome to compare
        return ("raised", type(exc), str(exc))


# --- 1. v2 _check_parts: matching_rules -------------------------------------------------------

_RULE_ID_TYPES = frozenset({str, int, float, bool, type(None)})


def _old_check_parts(doc: dict[str, Any]) -> None:
    """The pre-change rxtweet.v2.convert._check_parts (commit 1e34553), verbatim."""
    includes = doc.get("includes")
    if includes is not None and type(includes) is not dict:
        raise TypeError(f"'includes' is {type(includes).__name__}, not an object")
    errors = doc.get("errors")
    if errors is not None and (
        type(errors) is not list or not all(map(isinstance, errors, repeat(dict)))
    ):
        raise TypeError("'errors' is not a list of objects")
    rules = doc.get("matching_rules")
    if rules is not None and (
        type(rules) is not list
        or not _RULE_ID_TYPES.issuperset(map(type, map(dict.get, rules, repeat("id"))))
    ):
        raise TypeError("'matching_rules' is not a list of objects with scalar ids")


RULES_MESSAGE = "'matching_rules' is not a list of objects with scalar ids"
#: CPython's own error for dict.get on a non-dict: what the old check let through as its
#: message for a rule that is not an object (the new check says RULES_MESSAGE instead).
DESCRIPTOR_MESSAGE = "descriptor 'get' for 'dict' objects doesn't apply to a"


class GetLies(dict):  # type: ignore[type-arg]
    """A dict subclass whose ``get`` is not dict's (only a caller's own doc can hold one)."""

    def get(self, key: Any, default: Any = None) -> Any:
        return ["not", "scalar"] if key == "id" else super().get(key, default)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)
rule_ids = st.one_of(json_values, st.just(2**64 + 1), st.just(True), st.just(0.5))
rule_dicts = st.one_of(
    st.builds(lambda i: {"id": i, "tag": "t", "value": "v"}, rule_ids),
    st.just({"tag": "no id"}),
    st.just({}),
    st.builds(lambda i: collections.OrderedDict(id=i), rule_ids),
    st.builds(lambda i: collections.defaultdict(list, id=i), rule_ids),
)
non_dict_rules = st.one_of(
    json_scalars, st.lists(json_scalars, max_size=2), st.just(collections.UserDict(id="1"))
)
rules_values = st.one_of(
    st.none(),
    st.lists(st.one_of(rule_dicts, rule_dicts, non_dict_rules), max_size=4),
    json_values,  # not a list at all, most of the time
)
docs_v2 = st.fixed_dictionaries(
    {},
    optional={
        "data": st.one_of(st.just({"id": "7", "text": "t"}), st.none(), json_values),
        "includes": st.one_of(st.just({"users": [{"id": "9"}]}), st.just({}), json_values),
        "errors": st.one_of(st.just([{"title": "x"}]), st.just([]), json_values),
        "matching_rules": rules_values,
    },
)


def same_check_outcome(old: Outcome, new: Outcome) -> None:
    """The new check gives the old outcome, but for one known, deliberate difference: a rule
    that is not an object was refused with CPython's descriptor error, now with the check's
    own message (the same TypeError, a clearer message: accepted, not a break)."""
    if old[0] == "raised" and old[2].startswith(DESCRIPTOR_MESSAGE):
        assert new == ("raised", TypeError, RULES_MESSAGE)
        return
    assert new == old


@SETTINGS
@given(docs_v2)
@example({"matching_rules": []})
@example({"matching_rules": [{"id": True}]})
@example({"matching_rules": [{"id": 2**80}, {"id": 1.5}, {"id": None}, {}]})
@example({"matching_rules": [{"id": []}, "x"]})  # the bad id first: its message, both
@example({"matching_rules": ["x", {"id": []}]})  # the non-object first
@example({"matching_rules": [None]})
@example({"matching_rules": [[]]})
@example({"matching_rules": {"id": "1"}})
@example({"matching_rules": "rules"})
@example({"data": {"id": "1"}, "matching_rules": [{"id": {"x": 1}}]})
def test_check_parts_refuses_and_takes_what_it_did(doc: dict[str, Any]) -> None:
    old = outcome(lambda: _old_check_parts(doc))
    same_check_outcome(old, outcome(lambda: v2_convert._check_parts(doc)))
    # And through each public converter that checks the parts, against the same converter
    # with the old check in its place: the same error, or the same kind of result.
    for convert in (
        v2_convert.to_stream_response,
        v2_convert.to_stream_tweet,
        v2_convert.to_lone_tweet_or_response,
    ):
        new = converted(convert, doc)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(v2_convert, "_check_parts", _old_check_parts)
            before = converted(convert, doc)
        same_check_outcome(before, new)


def converted(convert: Callable[[dict[str, Any]], Any], doc: dict[str, Any]) -> Outcome:
    """What ``convert(doc)`` gives: its type and the doc (or data) it wraps, or its error."""
    result = outcome(lambda: convert(doc))
    if result[0] == "raised":
        return result
    made = result[1]
    if isinstance(made, StreamResponse):
        return (
            "ok",
            type(made),
            id(made._doc),
            None if made._data is None else id(made._data.data),
        )
    return ("ok", type(made), None if made is None else id(made.data))


def test_rules_that_pass_the_check_read_without_raising() -> None:
    # What the check is for: each rule's id is a scalar, so str() of it cannot fail later.
    doc = {"data": {"id": "1"}, "matching_rules": [{"id": True}, {"id": 2**80}, {}, {"id": 0.5}]}
    response = v2_convert.to_stream_response(doc)
    assert response.matching_rules == [
        StreamRule(None, None, "True"),
        StreamRule(None, None, str(2**80)),
        StreamRule(None, None, None),
        StreamRule(None, None, "0.5"),
    ]


def test_a_dict_subclass_is_checked_through_the_get_the_rules_are_read_with() -> None:
    # Only a caller's own doc can hold one (no JSON decoder makes them). The old check read
    # the id with dict.get and let this rule through; rule_of reads it with the subclass's
    # get (a list). The new check reads it as rule_of will, and refuses it.
    doc = {"data": {"id": "1"}, "matching_rules": [GetLies(id="5")]}
    assert outcome(lambda: _old_check_parts(doc)) == ("ok", None)
    assert outcome(lambda: v2_convert._check_parts(doc)) == ("raised", TypeError, RULES_MESSAGE)


# --- 2. v1 _watching_unknown: the status fast path ------------------------------------------


def _old_watching_unknown(limit: int = v1_convert.UNKNOWN_STREAK_WARNING) -> Callable[[Any], Any]:
    """The pre-change rxtweet.v1.convert._watching_unknown (commit 1e34553), verbatim but
    for the module's names (``_classify``, ``log``, ``UnknownNotice``) read from it."""
    streak = 0
    warned = False
    log = v1_convert.log
    unknown = UnknownNotice

    def convert(doc: dict[str, Any]) -> Any:
        nonlocal streak, warned
        message = v1_convert._classify(doc)
        if type(message) is not unknown:
            streak = 0
            return message
        streak += 1
        keys = ", ".join(list(doc)[:10])
        if streak > limit and warned:
            log.debug("Received unknown message type (keys: %s)", keys)
            return message
        log.warning("Received unknown message type (keys: %s)", keys)
        if streak == limit and not warned:
            warned = True
            v2 = any(key in doc for key in ("data", "matching_rules", "includes"))
            log.warning(
                "%d messages in a row were of no API v1.1 type: this stream does not look "
                "like API v1.1%s. Check the URL (base_url) and the endpoint. Further unknown "
                "messages in a row are logged at DEBUG.",
                limit,
                " (its messages look like API v2: use rxtweet.StreamingClient)" if v2 else "",
            )
        return message

    return convert


def _level_and_message(record: logging.LogRecord) -> tuple[int, str]:
    return record.levelno, record.getMessage()


@pytest.fixture
def v1_records() -> Iterator[list[tuple[int, str]]]:
    """Every record of v1.1's converter's logger, as (level, message)."""
    with log_records(v1_convert.log.name, _level_and_message) as got:
        yield got


def v1_outcome(convert: Callable[[Any], Any], doc: dict[str, Any]) -> Outcome:
    """What ``convert(doc)`` gives, comparable across two runs on the same doc."""
    result = outcome(lambda: convert(doc))
    if result[0] == "raised":
        return result
    message = result[1]
    # The same type, wrapping the very doc (or its inner object), each read the same.
    inner = message.data
    readable = outcome(lambda: (message.id, message.id_str)) if type(message) is Status else None
    return ("ok", type(message), id(inner), inner is doc, readable, outcome(lambda: hash(message)))


v1_ids = st.one_of(
    st.booleans(),  # bool is an int subclass: type(True) is int is False
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**64 + 1, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(["123", "1e3", "٣", "-5", " 7"]),
    st.none(),
    st.lists(st.integers(), max_size=1),
)
docs_v1 = st.fixed_dictionaries(
    {},
    optional={
        "in_reply_to_status_id": st.one_of(st.none(), st.integers(), st.text(max_size=2)),
        "id": v1_ids,
        "id_str": st.one_of(st.none(), st.text(max_size=3), st.integers()),
        "user": st.just({"id": 1}),
        "text": st.just("t"),
        "delete": st.just({"status": {"id": 1, "user_id": 2}}),
        "limit": st.one_of(st.just({"track": 3}), st.just("x")),
        "data": st.just({"id": "1"}),
    },
)


@SETTINGS
@given(st.lists(docs_v1, max_size=30), st.integers(min_value=1, max_value=4))
@example([{"in_reply_to_status_id": None, "id": True}], 20)
@example([{"in_reply_to_status_id": None, "id": False, "id_str": "3"}], 20)
@example([{"in_reply_to_status_id": None, "id": 2**80}], 20)
@example([{"in_reply_to_status_id": None, "id": 1.0}], 20)
@example([{"in_reply_to_status_id": None, "id": "12"}], 20)
@example([{"in_reply_to_status_id": None}], 20)
@example([{"in_reply_to_status_id": None, "id_str": "x"}], 20)
@example([{"in_reply_to_status_id": None, "id": -3}], 20)
def test_v1_converter_gives_what_it_gave_and_logs_the_same(
    docs: list[dict[str, Any]], limit: int
) -> None:
    """Any sequence of messages: the same results and the same log records, in order (a
    small ``limit`` makes the streak's WARNING/DEBUG switch and its resets frequent)."""
    runs = []
    for make in (_old_watching_unknown, v1_convert._watching_unknown):
        with log_records(v1_convert.log.name, _level_and_message) as logged:
            convert = make(limit)
            results = [v1_outcome(convert, doc) for doc in docs]
        runs.append((results, logged))
    assert runs[1] == runs[0]


def test_the_fast_path_resets_the_streak_as_before(v1_records: list[tuple[int, str]]) -> None:
    """21 unknowns (the summary WARNING at the 20th, DEBUG for the 21st), a status of the
    fast path, 21 unknowns again: the streak starts over (WARNINGs, no second summary)."""
    unknown: dict[str, Any] = {"foo": 1}
    status: dict[str, Any] = {"in_reply_to_status_id": None, "id": 5, "text": "t", "user": {}}
    docs = [unknown] * 21 + [status] + [unknown] * 21 + [status, status] + [unknown]
    got: list[list[tuple[int, str]]] = []
    for make in (_old_watching_unknown, v1_convert._watching_unknown):
        v1_records.clear()
        convert = make()
        kinds = [type(convert(doc)).__name__ for doc in docs]
        assert kinds.count("Status") == 3
        got.append(list(v1_records))
    assert got[1] == got[0]
    levels = [level for level, _ in got[1]]
    # 1..20 WARNING + the summary, 21st DEBUG; after the status 1..20 WARNING, 21st DEBUG;
    # after the two statuses, WARNING again.
    assert levels == [logging.WARNING] * 21 + [logging.DEBUG] + [logging.WARNING] * 20 + [
        logging.DEBUG,
        logging.WARNING,
    ]


def test_the_fast_status_is_the_status_init_makes() -> None:
    doc = {"in_reply_to_status_id": None, "id": 2**64 + 1, "id_str": "x", "text": "t"}
    made = v1_convert._watching_unknown()(doc)
    assert type(made) is Status and made.data is doc
    assert made == Status(doc) and hash(made) == hash(Status(doc))
    assert made.id == 2**64 + 1 and made.id_str == "x" and dict(made) == doc
    assert made.__getstate__() == Status(doc).__getstate__()


# --- 3. StreamingClient._dispatch -------------------------------------------------------------


def _old_has(response: StreamResponse, name: str) -> bool:
    """The pre-change StreamResponse._has (commit 1e34553; gone with its only caller)."""
    doc = response._doc
    return bool(getattr(response, name) if doc is None else doc.get(name))


def _old_dispatch_parts(self: StreamingClient, response: StreamResponse) -> None:
    """The pre-change StreamingClient._dispatch_parts (commit 1e34553), verbatim but for
    StreamResponse._has, inlined above."""
    overridden = client_module._overridden
    if overridden(self, "on_includes") and _old_has(response, "includes"):
        self.on_includes(response.includes)
    if _old_has(response, "errors"):
        self.on_errors(response.errors)
    if overridden(self, "on_matching_rules") and _old_has(response, "matching_rules"):
        self.on_matching_rules(response.matching_rules)


def _old_dispatch(self: StreamingClient, response: StreamResponse, raw: bytes = b"") -> None:
    """The pre-change StreamingClient._dispatch (commit 1e34553), verbatim but for the
    module's names read from it."""
    tweet = response.data
    if tweet is not None:
        self.on_tweet(tweet)
    doc = response._doc
    if tweet is None or doc is None or len(doc) > 1:
        _old_dispatch_parts(self, response)
    respond = self._respond
    if respond is None:
        respond = client_module._overridden(self, "on_response")
    debug = client_module._DEBUG
    if respond or (
        client_module._LEVELS.get(debug) is not False and client_module.log.isEnabledFor(debug)
    ):
        self.on_response(response)


HOOKS = ("on_includes", "on_errors", "on_matching_rules", "on_response")
#: Where a hook is overridden: not at all, on the instance, in a subclass, or by a patch of
#: StreamingClient's own attribute.
PLACES = ("default", "instance", "subclass", "class")
#: What a hook does besides recording its call, when called: nothing, set another hook on
#: the instance, delete one set on the instance, patch the subclass's attribute.
ACTIONS = ("none", "set", "delete", "patch")


def shown(value: Any) -> Any:
    """A comparable form of what a hook got (two runs have two responses)."""
    if isinstance(value, StreamResponse):
        return ("response", type(value).__name__)
    if isinstance(value, Tweet):
        return ("tweet", value.data.get("id"))
    return repr(value)


def dispatch_run(
    dispatch: Callable[..., None],
    make_response: Callable[[], StreamResponse],
    places: dict[str, str],
    actions: dict[str, tuple[str, str]],
    debug: bool,
) -> tuple[list[Any], Any, list[tuple[int, str]]]:
    """One dispatch on a fresh client: the hooks called (in order, with what they got), the
    parts of the response converted (a message's, lazily), the client module's records."""
    calls: list[Any] = []

    def recorder(name: str) -> Callable[..., None]:
        def hook(*args: Any) -> None:
            value = args[-1]  # (self, value) from the class, (value,) from the instance
            client = args[0] if len(args) == 2 else owner[0]
            calls.append((name, shown(value)))
            action, target = actions.get(name, ("none", ""))
            if action == "set":
                setattr(client, target, recorder(target + "@set"))
            elif action == "delete":
                vars(client).pop(target, None)
            elif action == "patch":
                setattr(type(client), target, recorder(target + "@patched"))

        return hook

    namespace: dict[str, Any] = {"on_tweet": lambda self, t: calls.append(("on_tweet", shown(t)))}
    for hook, place in places.items():
        if place == "subclass":
            namespace[hook] = recorder(hook)
    cls = type("Client", (StreamingClient,), namespace)
    owner: list[Any] = []
    with pytest.MonkeyPatch.context() as patch:
        for hook, place in places.items():
            if place == "class":
                patch.setattr(StreamingClient, hook, recorder(hook))
        client = cls("token-of-a-dispatch-test", daemon=True)
        owner.append(client)
        for hook, place in places.items():
            if place == "instance":
                setattr(client, hook, recorder(hook))
        response = make_response()
        level = logging.DEBUG if debug else logging.INFO
        with log_records(client_module.log.name, _level_and_message, level) as logged:
            dispatch(client, response)
    converted = tuple(
        hasattr(response, slot) for slot in ("_includes", "_errors", "_matching_rules")
    )
    return calls, converted, logged


valid_docs = st.fixed_dictionaries(
    {},
    optional={
        "data": st.sampled_from([{"id": "7", "text": "t"}, None]),
        "includes": st.sampled_from([{"users": [{"id": "9"}]}, {}, {"x": []}]),
        "errors": st.sampled_from([[{"title": "x"}], []]),
        "matching_rules": st.sampled_from([[{"id": "5", "tag": "t"}], [], [{}]]),
        "other": st.just(1),
    },
)
hand_built = st.tuples(
    st.sampled_from([None, {"id": "7", "text": "t"}]),
    st.sampled_from([{}, {"users": []}, {"x": 1}]),
    st.sampled_from([[], [{"title": "x"}]]),
    st.sampled_from([[], [StreamRule("v", "t", "5")]]),
)
places_st = st.fixed_dictionaries({hook: st.sampled_from(PLACES) for hook in HOOKS})
actions_st = st.dictionaries(
    st.sampled_from(HOOKS),
    st.tuples(st.sampled_from(ACTIONS), st.sampled_from(("on_includes", "on_matching_rules"))),
    max_size=2,
)


@SETTINGS
@given(st.one_of(valid_docs, hand_built), places_st, actions_st, st.booleans())
@example(
    {"data": {"id": "7"}, "includes": {"users": []}, "matching_rules": [{"id": "5"}]},
    {
        "on_includes": "default",
        "on_errors": "default",
        "on_matching_rules": "default",
        "on_response": "default",
    },
    {},
    False,
)
@example(
    (None, {"users": []}, [{"title": "x"}], [StreamRule("v", "t", "5")]),
    {
        "on_includes": "instance",
        "on_errors": "class",
        "on_matching_rules": "subclass",
        "on_response": "default",
    },
    {"on_includes": ("set", "on_matching_rules")},
    True,
)
def test_dispatch_calls_the_hooks_it_called(
    source: Any, places: dict[str, str], actions: dict[str, tuple[str, str]], debug: bool
) -> None:
    """A message's response or one built by hand, each hook in each place, hooks that set,
    delete or patch another mid-dispatch, DEBUG on or off: the same hooks, in the same
    order, with the same values; the same parts converted (a message's are lazy); the same
    records."""

    def make_response() -> StreamResponse:
        if isinstance(source, dict):
            return v2_convert.to_stream_response(source)
        data, includes, errors, rules = source
        return StreamResponse(None if data is None else Tweet(data), includes, errors, rules)

    old = dispatch_run(_old_dispatch, make_response, places, actions, debug)
    new = dispatch_run(StreamingClient._dispatch, make_response, places, actions, debug)
    assert new == old


class RulesTaker(StreamingClient):
    """A client class that takes the matching rules (for a switch of ``__class__``)."""

    rules_seen: list[Any]

    def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        self.rules_seen.append(matching_rules)


def test_a_hook_that_switches_the_class_mid_dispatch_is_followed_as_before() -> None:
    """REGRESSION (found by this review): a hook that changes the client's ``__class__``
    (to a class that overrides the next hook) while a message is dispatched. The old
    ``_dispatch_parts`` looked the class up for each hook; the inlined checks read
    ``type(self)`` once, before ``on_includes`` runs, so the new class's
    ``on_matching_rules`` is skipped for that message."""

    class Switching(StreamingClient):
        def on_includes(self, includes: dict[str, Any]) -> None:
            self.__class__ = RulesTaker  # type: ignore[assignment]

    doc = {"data": {"id": "7"}, "includes": {"users": []}, "matching_rules": [{"id": "5"}]}
    seen: list[list[Any]] = []
    for dispatch in (_old_dispatch, StreamingClient._dispatch):
        client = Switching("token-of-a-dispatch-test", daemon=True)
        vars(client)["rules_seen"] = []
        dispatch(client, v2_convert.to_stream_response(doc))
        seen.append(vars(client)["rules_seen"])
    assert seen[0] == [[StreamRule(None, None, "5")]]  # the old code called it
    assert seen[1] == seen[0]


def test_a_hand_built_response_calls_the_hooks_with_its_own_parts() -> None:
    includes: dict[str, Any] = {"users": []}
    errors: list[dict[str, Any]] = [{"title": "x"}]
    rules = [StreamRule("v", "t", "5")]
    got: list[Any] = []

    class Taker(StreamingClient):
        def on_includes(self, value: Any) -> None:
            got.append(value)

        def on_errors(self, value: Any) -> None:
            got.append(value)

        def on_matching_rules(self, value: Any) -> None:
            got.append(value)

    Taker("token-of-a-dispatch-test", daemon=True)._dispatch(
        StreamResponse(None, includes, errors, rules)
    )
    assert got == [includes, errors, rules]
    assert all(a is b for a, b in zip(got, (includes, errors, rules), strict=True))


# --- 4. batch_parser: value calls worked out per change, over a real server ------------------


def both(scenario: Callable[[], Any]) -> tuple[Any, Any, int, int]:
    """``scenario()`` with the value path, then with the share's own way (``multicast_of``
    patched to find no share: the parser makes each ``Parsed`` and calls the share's
    ``on_next``): the two results and how many ``Parsed`` each run made."""
    counts: list[int] = []
    results: list[Any] = []
    real = parse_module._new_tuple
    for plain in (False, True):
        made: list[int] = []

        def counting(cls: Any, items: Any, made: list[int] = made) -> Any:
            if cls is Parsed:
                made.append(1)
            return real(cls, items)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(parse_module, "_new_tuple", counting)
            if plain:
                patch.setattr(parse_module, "multicast_of", lambda emit: None)
                patch.setattr(connection_module, "multicast_of", lambda emit: None)
            results.append(scenario())
        counts.append(len(made))
    return results[0], results[1], counts[0], counts[1]


def numbered(last: int) -> list[bytes]:
    """Tweets 2..last, every 4th with includes and rules, an errors-only message and a
    keep-alive among them."""
    out: list[bytes] = []
    for n in range(2, last + 1):
        out.append(full(n) if n % 4 == 0 else tweet(n))
        if n == 9:
            out += [b"", b'{"errors":[{"title":"x"}]}']
    return out


def show(item: Any) -> Any:
    data = getattr(item, "data", None)
    if isinstance(data, Tweet):
        return ("R", int(data.id))
    if isinstance(item, Tweet):
        return int(item.id)
    return repr(item)


class ShowLog(Log):
    show = staticmethod(show)


def test_the_one_subscriber_swapped_from_inside_its_on_next_gets_what_the_share_gives(
    serve: Serve,
) -> None:
    """The projection's one subscriber disposes itself and subscribes another (the cached
    guard and call must be the new one's), a second ``tweets`` subscriber comes and goes
    (one, two, one again), an ``includes`` subscriber joins and leaves: the items each gets
    are those of the share's own way."""

    def scenario() -> dict[str, list[Any]]:
        lines = numbered(40)
        server, connection = serve(Feed([lines[:20], lines[20:]]))
        stream = TweetStream(connection)
        log = ShowLog()

        def first(item: Any) -> None:
            if int(item.id) == 5:  # b first: the connection must not lose its last one
                log.sub("b", stream.tweets, second)
                log.subs["a"].dispose()

        def second(item: Any) -> None:
            n = int(item.id)
            if n == 12:
                log.sub("c", stream.tweets)
            elif n == 20:
                log.subs["c"].dispose()  # after b, before c in this message: c misses 20
                log.sub("i", stream.includes)
            elif n == 26:
                log.subs["i"].dispose()
            elif n == 30:
                log.sub("d", stream.tweets, witness=True)
                log.subs["b"].dispose()

        with stream.hold():
            log.sub("a", stream.tweets, first)
        got = log.wait()
        assert server.connections == 1
        return got

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain
    assert fused["a"] == [1, 2, 3, 4, 5]
    assert fused["b"] == list(range(6, 31))
    assert fused["c"] == list(range(13, 20))
    assert len(fused["i"]) == 1  # the includes of 24: joined during 20's, left at 26
    assert fused["d"][:-1] == list(range(31, 41))
    assert fused["d"][-1][:2] == ("error", "RetriesExhausted")  # the body's end, ONCE
    assert made_fused < made_plain  # the value path ran


def test_a_subscriber_added_from_another_thread_mid_read_gets_the_next_message_on(
    serve: Serve,
) -> None:
    """The reader is held inside the one subscriber's on_next (the projection, mid-read)
    while another thread subscribes to ``tweets``: the new one gets the read's next
    message on, as from the share."""

    def scenario() -> dict[str, list[Any]]:
        _server, connection = serve(Feed([numbered(30)]))
        stream = TweetStream(connection)
        log = ShowLog()
        inside, added = threading.Event(), threading.Event()

        def holding(item: Any) -> None:
            if int(item.id) == 10:
                inside.set()
                assert added.wait(2.0)

        with stream.hold():
            log.sub("a", stream.tweets, holding, witness=True)
        assert inside.wait(2.0)
        log.sub("late", stream.tweets)
        added.set()
        return log.wait()

    fused, plain, _made_fused, _made_plain = both(scenario)
    assert fused == plain
    assert fused["late"][:-1] == list(range(11, 31))


class SwitchingHooks(Hooks):
    """The hook face on a test's connection, whose hooks are set on the instance, and
    removed, by its on_tweet mid-run (a careless user's way of turning them on and off)."""

    def __init__(self, connection: Any, leave_at: int) -> None:
        super().__init__(connection, leave_at)
        self.calls: list[Any] = []

    def on_tweet(self, tweet: Any) -> None:
        n = int(tweet.id)
        self.calls.append(("tweet", n))
        own = vars(self)  # set as a user would: self.on_includes = ... (mypy: a method)
        if n == 6:
            own["on_includes"] = lambda value: self.calls.append(("includes", sorted(value)))
        elif n == 14:
            own["on_matching_rules"] = lambda value: self.calls.append(("rules", value))
        elif n == 22:
            del own["on_includes"]
        elif n == 30:
            type(self).on_includes = _patched_on_includes  # type: ignore[method-assign,assignment]
        super().on_tweet(tweet)

    def on_errors(self, errors: list[dict[str, Any]]) -> None:
        self.calls.append(("errors", errors))


def _patched_on_includes(self: SwitchingHooks, includes: dict[str, Any]) -> None:
    self.calls.append(("class", 1))


def test_hooks_set_on_the_instance_mid_run_are_called_as_before(serve: Serve) -> None:
    """Over a real server, the hook face's run: hooks set on the instance, deleted, and
    patched on the class by a hook during the run; the same calls, in the same order, as
    with the pre-change ``_dispatch``."""

    def run() -> list[Any]:
        cls = type("Hooked", (SwitchingHooks,), {})  # a class of its own to patch
        lines = numbered(40)
        _server, connection = serve(Feed([lines[:20], lines[20:]]))
        client = cls(connection, leave_at=40)
        thread = client.sample(threaded=True)
        assert client.disconnected.wait(3.0)
        assert thread is not None
        thread.join(2.0)
        return list(client.calls)

    new = run()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StreamingClient, "_dispatch", _old_dispatch)
        old = run()
    assert new == old
    assert [n for kind, n in new if kind == "tweet"] == list(range(1, 41))
    assert ("includes", ["users"]) in new and ("class", 1) in new
    assert ("errors", [{"title": "x"}]) in new
