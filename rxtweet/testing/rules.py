"""The filtered stream's rules, as X's rules endpoint keeps and evaluates them, without sockets.

:class:`RulesStore` is the in-memory rule set behind ``/2/tweets/search/stream/rules``
(``get``/``post`` answer the endpoint's GET and POST as ``(status, document)``), and
:func:`_compile_rule` turns a rule value into a predicate over :class:`_Tweet` (a documented
subset of X's rule syntax; see :class:`~rxtweet.testing.FakeStreamServer`).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from ._http import _now_iso, _query_bool
from .problems import PROBLEMS, _invalid_request

__all__ = ["MAX_RULE_LENGTH", "RulesStore"]

logger = logging.getLogger(__name__)

#: Longest rule value accepted by the rules endpoint (Essential/Elevated tiers).
MAX_RULE_LENGTH = 512

_RULE_ID_BASE = 1_745_000_000_000_000_100

#: Rule operators X has that this server does not evaluate (see :class:`FakeStreamServer`).
_UNSUPPORTED_OPERATORS = frozenset(
    {
        "from",
        "to",
        "url",
        "retweets_of",
        "context",
        "entity",
        "conversation_id",
        "bio",
        "bio_name",
        "bio_location",
        "place",
        "place_country",
        "point_radius",
        "bounding_box",
        "sample",
        "followers_count",
        "tweets_count",
        "following_count",
        "listed_count",
        "url_title",
        "url_description",
        "url_contains",
        "source",
        "in_reply_to_tweet_id",
        "retweets_of_tweet_id",
        "quotes_of_tweet_id",
        "embedding",
    }
)
_HAS = frozenset({"images", "media", "links", "hashtags", "mentions"})
_IS = {"retweet": "retweeted", "reply": "replied_to", "quote": "quoted"}
_RULE_TOKEN = re.compile(r'\s*(?:(-?)"((?:[^"\\]|\\.)*)"(?:~\d+)?|(\()|(\))|(-?)([^\s()"]+))')
_WORD = re.compile(r"\w+")


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (messages may be any shape)."""
    return value if isinstance(value, dict) else {}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _unspaced(text: str) -> bool:
    """Whether ``text`` has a script written without spaces (CJK, Thai...): substring match."""
    return any(
        "\u0e00" <= ch <= "\u0e7f" or "\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"
        for ch in text
    )


def _contains_words(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    if n == 0:
        return False
    first = needle[0]
    return any(
        haystack[i] == first and haystack[i : i + n] == needle for i in range(len(haystack) - n + 1)
    )


@dataclass(frozen=True, slots=True)
class _Tweet:
    """What a rule is matched against: one Tweet message, with everything X knows of it."""

    text: str
    words: list[str]
    lang: str
    hashtags: frozenset[str]
    mentions: frozenset[str]
    has: frozenset[str]
    kinds: frozenset[str]

    @staticmethod
    def of(doc: Mapping[str, Any]) -> _Tweet:
        data = doc["data"]
        text = data.get("text") if isinstance(data.get("text"), str) else ""
        entities = _obj(data.get("entities"))
        hashtags = {
            str(h.get("tag", "")).casefold()
            for h in entities.get("hashtags") or ()
            if isinstance(h, dict)
        }
        hashtags.update(m.casefold() for m in re.findall(r"(?<!\w)#(\w+)", text))
        mentions = {
            str(m.get("username", "")).casefold()
            for m in entities.get("mentions") or ()
            if isinstance(m, dict)
        }
        mentions.update(m.casefold() for m in re.findall(r"(?<!\w)@(\w+)", text))
        attachments = _obj(data.get("attachments"))
        media_keys = set(attachments.get("media_keys") or ())
        includes = _obj(doc.get("includes"))
        media_types = {
            m.get("type")
            for m in includes.get("media") or ()
            if isinstance(m, dict) and m.get("media_key") in media_keys
        }
        has: set[str] = set()
        if media_keys:
            has.add("media")
        if "photo" in media_types:
            has.add("images")
        if entities.get("urls") or "https://t.co/" in text or "http://" in text:
            has.add("links")
        if hashtags:
            has.add("hashtags")
        if mentions:
            has.add("mentions")
        kinds = {
            str(r.get("type")) for r in data.get("referenced_tweets") or () if isinstance(r, dict)
        }
        return _Tweet(
            text=text.casefold(),
            words=_words(text),
            lang=str(data.get("lang") or "").casefold(),
            hashtags=frozenset(hashtags),
            mentions=frozenset(mentions),
            has=frozenset(has),
            kinds=frozenset(kinds),
        )


_Test: TypeAlias = Callable[[_Tweet], bool]


class _RuleSyntaxError(ValueError):
    pass


class _RuleParser:
    """Compiles a rule value into a predicate over :class:`_Tweet`.

    Grammar (X's, restricted): ``or := and ("OR" and)*``; ``and := unary+`` (a space is AND,
    which binds tighter than OR); ``unary := "-"? atom``; ``atom := "(" or ")" | "phrase" |
    term``. ``unsupported`` collects the operators this server cannot evaluate.
    """

    def __init__(self, value: str) -> None:
        self.tokens: list[tuple[str, str, bool]] = []  # (kind, text, negated)
        self.pos = 0
        self.unsupported: list[str] = []
        at = 0
        while at < len(value):
            if value[at:].strip() == "":
                break
            match = _RULE_TOKEN.match(value, at)
            if match is None or match.end() == at:
                raise _RuleSyntaxError(f"Unexpected character (at position {at + 1})")
            neg_phrase, phrase, opening, closing, neg_term, term = match.groups()
            if phrase is not None:
                self.tokens.append(("phrase", phrase.replace('\\"', '"'), bool(neg_phrase)))
            elif opening:
                self.tokens.append(("(", "(", False))
            elif closing:
                self.tokens.append((")", ")", False))
            elif term == "OR" and not neg_term:
                self.tokens.append(("OR", "OR", False))
            else:
                self.tokens.append(("term", term, bool(neg_term)))
            at = match.end()

    def parse(self) -> tuple[_Test, bool]:
        """The predicate, and whether the rule has a positive (non-negated) clause."""
        if not self.tokens:
            raise _RuleSyntaxError(
                "Rules must contain at least one positive, non-stopword clause (at position 1)"
            )
        test, positive = self._or()
        if self.pos != len(self.tokens):
            raise _RuleSyntaxError("Unbalanced parentheses or a misplaced operator")
        return test, positive

    def _peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def _or(self) -> tuple[_Test, bool]:
        branches = [self._and()]
        while self._peek() == "OR":
            self.pos += 1
            branches.append(self._and())
        if len(branches) == 1:
            return branches[0]
        tests = [t for t, _ in branches]
        return (lambda tw: any(t(tw) for t in tests)), all(p for _, p in branches)

    def _and(self) -> tuple[_Test, bool]:
        parts: list[tuple[_Test, bool]] = []
        while self._peek() in ("term", "phrase", "("):
            parts.append(self._unary())
        if not parts:
            raise _RuleSyntaxError("Expected a clause (an empty group or a dangling OR)")
        if len(parts) == 1:
            return parts[0]
        tests = [t for t, _ in parts]
        return (lambda tw: all(t(tw) for t in tests)), any(p for _, p in parts)

    def _unary(self) -> tuple[_Test, bool]:
        kind, text, negated = self.tokens[self.pos]
        self.pos += 1
        if kind == "(":
            test, positive = self._or()
            if self._peek() != ")":
                raise _RuleSyntaxError("Unbalanced parentheses")
            self.pos += 1
            return test, positive
        if kind == "term" and text == "-":
            raise _RuleSyntaxError("Negation needs a term: no space after '-'")
        test = self._phrase(text) if kind == "phrase" else self._term(text)
        if negated:
            return (lambda tw: not test(tw)), False
        return test, True

    @staticmethod
    def _phrase(text: str) -> _Test:
        if _unspaced(text):
            needle = text.casefold()
            return lambda tw: needle in tw.text
        words = _words(text)
        return lambda tw: _contains_words(tw.words, words)

    def _term(self, text: str) -> _Test:
        operator, colon, argument = text.partition(":")
        name = operator.casefold()
        if colon and argument:
            arg = argument.casefold()
            if name == "lang":
                return lambda tw: tw.lang == arg
            if name == "has" and arg in _HAS:
                return lambda tw: arg in tw.has
            if name == "is" and arg in _IS:
                kind = _IS[arg]
                return lambda tw: kind in tw.kinds
            if name in _UNSUPPORTED_OPERATORS or name in ("has", "is"):
                self.unsupported.append(text)
                return lambda tw: False
        if text.startswith("#") and len(text) > 1:
            tag = text[1:].casefold()
            return lambda tw: tag in tw.hashtags
        if text.startswith("@") and len(text) > 1:
            user = text[1:].casefold()
            return lambda tw: user in tw.mentions
        if text.startswith(("$", "~")):
            self.unsupported.append(text)
            return lambda tw: False
        return self._phrase(text)


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    id: str
    tag: str | None
    test: _Test


def _compile_rule(value: str) -> tuple[_Test | None, list[str], list[str]]:
    """``(predicate, problems, unsupported operators)``; a predicate only without problems."""
    parser: _RuleParser | None = None
    try:
        parser = _RuleParser(value)
        test, positive = parser.parse()
    except _RuleSyntaxError as exc:
        return None, [f"{exc}"], parser.unsupported if parser else []
    if not positive:
        return None, ["Rules must contain a non-negation term (at position 1)"], []
    return test, [], parser.unsupported


def _rule_problems(value: str) -> list[str]:
    if not value.strip():
        return ["Rules must contain at least one positive, non-stopword clause (at position 1)"]
    if len(value) > MAX_RULE_LENGTH:
        return [
            f"Rule length is {len(value)} characters; rules may have at most "
            f"{MAX_RULE_LENGTH} characters"
        ]
    return _compile_rule(value)[1]


def _never(_: _Tweet) -> bool:
    return False


class RulesStore:
    """The rule set of one server: ids, values, tags and their compiled predicates.

    Not thread-safe: its owner calls every method under one lock (the server's), so that a
    stream connection never sees half of a change.

    Args:
        rules: rules to start with, as ``{"value": ..., "tag": ...}`` mappings.

    Raises:
        ValueError: a starting rule is invalid (the message names it and its problems).
    """

    def __init__(self, rules: Iterable[Mapping[str, Any]] | None = None) -> None:
        self._rules: dict[str, dict[str, str]] = {}
        self._compiled: dict[str, _CompiledRule] = {}
        self._rule_ids = itertools.count(_RULE_ID_BASE)
        for rule in rules or ():
            value = str(rule["value"])
            tag = rule.get("tag")
            problems = _rule_problems(value)
            if problems:
                raise ValueError(f"invalid rule {value!r}: {'; '.join(problems)}")
            self._store_rule(value, None if tag is None else str(tag))

    def __len__(self) -> int:
        return len(self._rules)

    def snapshot(self) -> dict[str, dict[str, str]]:
        """id -> ``{"id", "value", "tag"?}``, a copy."""
        return {rule_id: dict(rule) for rule_id, rule in self._rules.items()}

    def compiled(self) -> list[_CompiledRule]:
        """The current rules' predicates, in the order they were added (a copy)."""
        return list(self._compiled.values())

    def _store_rule(self, value: str, tag: str | None) -> dict[str, str]:
        rule = {"value": value}
        if tag is not None:
            rule["tag"] = tag
        rule["id"] = str(next(self._rule_ids))
        test, _, unsupported = _compile_rule(value)
        if unsupported:
            logger.warning(
                "fake stream server: rule %r uses operators this server does not evaluate "
                "(%s): they never match",
                value,
                ", ".join(unsupported),
            )
        self._rules[rule["id"]] = rule
        self._compiled[rule["id"]] = _CompiledRule(rule["id"], tag, test or _never)
        return rule

    def get(self, query: Mapping[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """The answer to ``GET`` with ``query`` (optional ``ids``): ``(status, document)``."""
        wanted = {
            part.strip()
            for value in query.get("ids", [])
            for part in value.split(",")
            if part.strip()
        }
        data = [dict(rule) for rule in self._rules.values() if not wanted or rule["id"] in wanted]
        doc: dict[str, Any] = {}
        if data:
            doc["data"] = data
        doc["meta"] = {"sent": _now_iso(), "result_count": len(data)}
        return 200, doc

    def post(self, query: Mapping[str, list[str]], body: bytes) -> tuple[int, dict[str, Any]]:
        """The answer to ``POST`` (``add``/``delete``, ``dry_run``, ``delete_all``):
        ``(status, document)``; the rule set changes unless ``dry_run``."""
        dry_run = _query_bool(query, "dry_run")
        if _query_bool(query, "delete_all"):
            count = len(self._rules)
            if not dry_run:
                self._rules.clear()
                self._compiled.clear()
            return 200, {
                "meta": {"sent": _now_iso(), "summary": {"deleted": count, "not_deleted": 0}}
            }
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, orjson.loads(_invalid_request("Request body is not valid JSON"))
        if not isinstance(doc, dict) or ("add" in doc) == ("delete" in doc):
            params = doc if isinstance(doc, dict) else {}
            return 400, orjson.loads(_invalid_request("JSON doesn't match expected schema", params))
        if "add" in doc:
            return self._add(doc["add"], dry_run)
        return self._delete(doc["delete"], dry_run)

        return self._rules_delete(doc["delete"], dry_run)

    def _add(self, entries: Any, dry_run: bool) -> tuple[int, dict[str, Any]]:
        schema_ok = (
            isinstance(entries, list)
            and entries
            and all(
                isinstance(e, dict)
                and isinstance(e.get("value"), str)
                and isinstance(e.get("tag"), str | None)
                for e in entries
            )
        )
        if not schema_ok:
            return 400, orjson.loads(
                _invalid_request("JSON doesn't match expected schema", {"add": entries})
            )
        data: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        by_value = {rule["value"]: rule["id"] for rule in self._rules.values()}
        for entry in entries:
            value: str = entry["value"]
            tag: str | None = entry.get("tag")
            details = _rule_problems(value)
            if details:
                errors.append(
                    {
                        "value": value,
                        "details": details,
                        "title": "UnprocessableEntity",
                        "type": PROBLEMS + "invalid-rules",
                    }
                )
            elif value in by_value:
                errors.append(
                    {
                        "value": value,
                        "id": by_value[value],
                        "title": "DuplicateRule",
                        "type": PROBLEMS + "duplicate-rules",
                    }
                )
            else:
                if dry_run:
                    rule = {"value": value, **({"tag": tag} if tag is not None else {})}
                    rule["id"] = str(next(self._rule_ids))
                else:
                    rule = dict(self._store_rule(value, tag))
                by_value[value] = rule["id"]
                data.append(rule)
        doc: dict[str, Any] = {}
        if data:
            doc["data"] = data
        doc["meta"] = {
            "sent": _now_iso(),
            "summary": {
                "created": len(data),
                "not_created": len(errors),
                "valid": len(data),
                "invalid": len(errors),
            },
        }
        if errors:
            doc["errors"] = errors
        return 201, doc

    def _delete(self, spec: Any, dry_run: bool) -> tuple[int, dict[str, Any]]:
        ids = spec.get("ids") if isinstance(spec, dict) else None
        values = spec.get("values") if isinstance(spec, dict) else None
        schema_ok = (
            isinstance(spec, dict)
            and (ids is not None or values is not None)
            and all(
                isinstance(items, list) and items and all(isinstance(i, str) for i in items)
                for items in (ids, values)
                if items is not None
            )
        )
        if not schema_ok:
            return 400, orjson.loads(
                _invalid_request("JSON doesn't match expected schema", {"delete": spec})
            )
        deleted = 0
        errors: list[dict[str, Any]] = []
        targets: list[str | None] = list(ids or [])
        by_value = {rule["value"]: rule["id"] for rule in self._rules.values()}
        targets.extend(by_value.get(v) for v in values or [])
        gone: set[str] = set()
        for rule_id in targets:
            if rule_id is not None and rule_id in self._rules and rule_id not in gone:
                gone.add(rule_id)
                deleted += 1
            else:
                errors.append(
                    {
                        "errors": [{"parameters": {}, "message": "Rule does not exist"}],
                        "title": "Invalid Request",
                        "detail": "One or more parameters to your request was invalid.",
                        "type": PROBLEMS + "invalid-request",
                    }
                )
        if not dry_run:
            for rule_id in gone:
                del self._rules[rule_id]
                self._compiled.pop(rule_id, None)
        doc: dict[str, Any] = {
            "meta": {
                "sent": _now_iso(),
                "summary": {"deleted": deleted, "not_deleted": len(errors)},
            }
        }
        if errors:
            doc["errors"] = errors
        return 200, doc
