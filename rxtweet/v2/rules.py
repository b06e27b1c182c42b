"""The filtered stream's rules: add, delete, list and sync them (``/2/tweets/search/stream/rules``).

:class:`RulesMixin` gives :class:`~rxtweet.v2.StreamingClient` tweepy's ``add_rules``,
``delete_rules`` and ``get_rules``, and :meth:`~RulesMixin.sync_rules`, on the REST plumbing of
:class:`~rxtweet.v2.rest.RestCalls`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from ..errors import HTTPException, RulesSyncError, RxTweetException
from ..http import redact_url
from .convert import rule_of, to_response
from .models import StreamRule
from .rest import RestCalls, json_of

__all__ = ["RulesMixin", "RulesSync", "rules_of_doc"]


class RulesMixin(RestCalls):
    """The rules methods of :class:`~rxtweet.v2.StreamingClient` (tweepy's, plus
    :meth:`sync_rules`). The class it is mixed into provides ``base_url`` and
    ``return_type`` besides what :class:`~rxtweet.v2.rest.RestCalls` needs."""

    base_url: str
    return_type: type

    def add_rules(
        self, add: StreamRule | Iterable[StreamRule], *, dry_run: bool | None = None
    ) -> Any:
        """Add rules to the filtered stream (``POST /2/tweets/search/stream/rules``).

        Rule-level problems (``DuplicateRule``, invalid rules) come back in ``errors``; HTTP
        failures raise the typed exceptions.
        """
        if isinstance(add, str):
            raise TypeError(f"add_rules takes StreamRule objects: StreamRule({add!r})")
        rules = [add] if isinstance(add, StreamRule) else list(add)
        if not all(isinstance(rule, StreamRule) for rule in rules):
            raise TypeError("add_rules takes a StreamRule or an iterable of StreamRule")
        return self._rules_request("POST", json=_add_body(rules), dry_run=dry_run)

    def delete_rules(
        self,
        ids: int | str | StreamRule | Iterable[int | str | StreamRule],
        *,
        dry_run: bool | None = None,
    ) -> Any:
        """Delete rules by id (ids, or :class:`StreamRule` objects with ids)."""
        items = [ids] if isinstance(ids, int | str | StreamRule) else list(ids)
        id_list = [str(i.id if isinstance(i, StreamRule) else i) for i in items]
        if any(i in ("", "None") for i in id_list):
            raise ValueError("every rule to delete needs an id")
        return self._rules_request("POST", json={"delete": {"ids": id_list}}, dry_run=dry_run)

    def get_rules(self, *, ids: int | str | Iterable[int | str] | None = None) -> Any:
        """The active rules (``GET /2/tweets/search/stream/rules``), optionally by ids."""
        params: dict[str, str] = {}
        if ids is not None:
            params["ids"] = (
                ids
                if isinstance(ids, str)
                else (str(ids) if isinstance(ids, int) else ",".join(str(i) for i in ids))
            )
            if not params["ids"]:
                raise ValueError("ids is empty: pass None to get every rule")
        return self._rules_request("GET", params=params)

    def _rules_request(
        self,
        method: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        dry_run: bool | None = None,
    ) -> Any:
        response = self._rules_response(method, json=json, params=params, dry_run=dry_run)
        if self.return_type is requests.Response:
            return response
        doc = json_of(response, method)
        if self.return_type is dict:
            return doc
        return to_response(doc, StreamRule)

    def _rules_doc(
        self, method: str, *, json: Any = None, dry_run: bool | None = None
    ) -> dict[str, Any]:
        # The JSON whatever return_type says: sync_rules reads the documents itself.
        doc = json_of(self._rules_response(method, json=json, dry_run=dry_run), method)
        if not isinstance(doc, dict):
            raise RxTweetException(f"{method} {self._rules_url(shown=True)}: not a JSON object")
        return doc

    def _rules_url(self, *, shown: bool = False) -> str:
        url = f"{self.base_url}/2/tweets/search/stream/rules"
        return redact_url(url) if shown else url

    def _rules_response(
        self,
        method: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        dry_run: bool | None = None,
    ) -> requests.Response:
        """One rules call, answered 2xx; the typed exception otherwise (see
        :meth:`~rxtweet.v2.rest.RestCalls._call`)."""
        params = dict(params or {})
        if dry_run is not None:
            params["dry_run"] = "true" if dry_run else "false"
        return self._call(method, self._rules_url(), params=params, json=json)

    # --- rules sync ----------------------------------------------------------------------------

    def sync_rules(
        self,
        desired: Iterable[StreamRule | str],
        *,
        dry_run: bool = False,
        allow_empty: bool = False,
    ) -> RulesSync:
        """Make the filtered stream's rules equal to ``desired``; return what changed.

        A rule is its (value, tag) pair: a rule whose tag differs is deleted and added
        again. ``desired`` holds :class:`StreamRule` (``id`` ignored) or plain values.

        Order, so that a failure never leaves fewer rules than needed: the additions are
        validated first with X's ``dry_run`` (nothing changes when one is invalid); then
        the new rules are added; then the old ones deleted; last, the rules whose tag
        changed are added back (X allows a value only once, so these cannot go first).
        With ``dry_run=True`` the diff is computed and the additions validated, and
        nothing changes.

        Args:
            desired: the rules wanted. Empty means "delete every rule": refused unless
                ``allow_empty=True`` (an empty file read by mistake must not wipe them).
            dry_run: only compute and validate.
            allow_empty: allow an empty ``desired``.

        Returns:
            A :class:`RulesSync`: ``added`` (with the ids X gave them, ``None`` in a dry
            run), ``deleted``, ``unchanged``.

        Raises:
            ValueError: ``desired`` is empty without ``allow_empty``, a rule has no value, or
                one value appears with two tags.
            RulesSyncError: the server rejected an addition or a call failed; it says what
                was applied and what was not (``added``, ``deleted``, ``not_added``,
                ``not_deleted``), with X's problem documents in ``errors``.
        """
        wanted = _desired_rules(desired)
        if not wanted and not allow_empty:
            raise ValueError(
                "sync_rules: the desired rule set is empty, which would delete every rule; "
                "pass allow_empty=True if that is what you want"
            )
        try:
            current = rules_of_doc(self._rules_doc("GET"))
        except RxTweetException as exc:
            raise RulesSyncError("could not read the current rules", cause=exc) from exc
        wanted_keys = {(r.value, r.tag) for r in wanted}
        unchanged = tuple(r for r in current if (r.value, r.tag) in wanted_keys)
        kept_keys = {(r.value, r.tag) for r in unchanged}
        deleted = tuple(r for r in current if (r.value, r.tag) not in wanted_keys)
        added = tuple(r for r in wanted if (r.value, r.tag) not in kept_keys)
        plan = RulesSync(added=added, deleted=deleted, unchanged=unchanged, dry_run=True)
        retagged = {r.value for r in deleted}

        if added:
            try:
                check = self._rules_doc("POST", json=_add_body(added), dry_run=True)
            except RxTweetException as exc:
                raise RulesSyncError(
                    "validating the additions failed",
                    plan=plan,
                    not_added=added,
                    not_deleted=deleted,
                    errors=_problems_of(exc),
                    cause=exc,
                ) from exc
            problems = [
                e
                for e in _errors_of_doc(check)
                if not (e.get("title") == "DuplicateRule" and e.get("value") in retagged)
            ]
            if problems:
                raise RulesSyncError(
                    f"the server rejected {len(problems)} rule(s)",
                    plan=plan,
                    not_added=added,
                    not_deleted=deleted,
                    errors=problems,
                )
        if dry_run:
            return plan

        done_added: list[StreamRule] = []
        fresh = tuple(r for r in added if r.value not in retagged)
        again = tuple(r for r in added if r.value in retagged)
        steps: list[tuple[str, tuple[StreamRule, ...]]] = [
            ("add", fresh),
            ("delete", deleted),
            ("add", again),
        ]
        done_deleted: tuple[StreamRule, ...] = ()
        for step, rules in steps:
            if not rules:
                continue
            try:
                if step == "add":
                    doc = self._rules_doc("POST", json=_add_body(rules))
                    created = rules_of_doc(doc)
                    done_added.extend(created)
                    errors = _errors_of_doc(doc)
                    if errors:
                        raise _SyncStepFailed(errors)
                else:
                    doc = self._rules_doc(
                        "POST", json={"delete": {"ids": [r.id for r in rules if r.id]}}
                    )
                    errors = _errors_of_doc(doc)
                    if errors:
                        done_deleted = self._which_deleted(rules)
                        raise _SyncStepFailed(errors)
                    done_deleted = rules
            except (RxTweetException, _SyncStepFailed) as exc:
                applied = {(r.value, r.tag) for r in done_added}
                gone = {r.id for r in done_deleted}
                problems = exc.errors if isinstance(exc, _SyncStepFailed) else _problems_of(exc)
                cause = exc if isinstance(exc, RxTweetException) else None
                raise RulesSyncError(
                    f"{'adding' if step == 'add' else 'deleting'} rules failed",
                    plan=plan,
                    added=tuple(done_added),
                    deleted=done_deleted,
                    not_added=tuple(r for r in added if (r.value, r.tag) not in applied),
                    not_deleted=tuple(r for r in deleted if r.id not in gone),
                    errors=problems,
                    cause=cause,
                ) from cause
        # In the plan's order (the desired order), with the ids X gave.
        with_ids = {(r.value, r.tag): r for r in done_added}
        return RulesSync(
            added=tuple(with_ids.get((r.value, r.tag), r) for r in added),
            deleted=deleted,
            unchanged=unchanged,
            dry_run=False,
        )

    def _which_deleted(self, rules: tuple[StreamRule, ...]) -> tuple[StreamRule, ...]:
        # X's delete errors do not say which id failed: ask which of them are still there.
        try:
            still = {r.id for r in rules_of_doc(self._rules_doc("GET"))}
        except RxTweetException:
            return ()  # unknown: report none as done rather than claim too much
        return tuple(r for r in rules if r.id not in still)


def _add_body(rules: Iterable[StreamRule]) -> dict[str, Any]:
    return {
        "add": [
            {k: v for k, v in (("value", r.value), ("tag", r.tag)) if v is not None} for r in rules
        ]
    }


def rules_of_doc(doc: Any) -> list[StreamRule]:
    """The rules in a rules endpoint's JSON answer (``{"data": [{"id", "value", "tag"}]}``).

    A server that answers in another shape (a broken proxy, a hostile or buggy server) gets
    a typed error rather than a ``TypeError`` from deep inside the caller.

    Raises:
        RxTweetException: ``doc`` is not an object, ``data`` not a list, or a rule not an
            object with a string ``value`` (and a string ``tag``, a string or integer ``id``).
    """
    rules = doc.get("data") if isinstance(doc, dict) else None
    if rules is None and isinstance(doc, dict):
        return []  # no rules: X leaves "data" out
    if not isinstance(rules, list):
        shape = "an object" if isinstance(doc, dict) else f"a {type(doc).__name__}"
        raise RxTweetException(_MALFORMED_RULES + f'{shape} without a "data" list')
    parsed = []
    for n, rule in enumerate(rules, 1):
        if not (
            isinstance(rule, dict)
            and isinstance(rule.get("value"), str)
            and isinstance(rule.get("tag"), str | None)
            and isinstance(rule.get("id"), str | int | None)
            and not isinstance(rule.get("id"), bool)
        ):
            raise RxTweetException(_MALFORMED_RULES + f"rule {n} is not a rule object")
        parsed.append(rule_of(rule))
    return parsed


_MALFORMED_RULES = "the rules endpoint answered with JSON that is not a rules answer: "


def _errors_of_doc(doc: dict[str, Any]) -> list[dict[str, Any]]:
    errors = doc.get("errors")
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _problems_of(exc: BaseException) -> list[dict[str, Any]]:
    if isinstance(exc, HTTPException):
        problems = [e for e in exc.api_errors if isinstance(e, dict)]
        if not problems and isinstance(exc.body, dict):
            problems = [exc.body]
        return problems
    return []


def _desired_rules(desired: Iterable[StreamRule | str]) -> list[StreamRule]:
    if isinstance(desired, str | bytes | StreamRule | Mapping):
        # A dict would be iterated as its keys: json.load of {"data": [...]} would become
        # the one rule "data", and every real rule would be deleted.
        raise TypeError(
            "sync_rules takes an iterable of StreamRule (or of rule values), "
            f"not a {type(desired).__name__}"
        )
    rules: dict[str, StreamRule] = {}
    for item in desired:
        rule = StreamRule(item) if isinstance(item, str) else item
        if not isinstance(rule, StreamRule):
            raise TypeError(f"sync_rules: expected StreamRule or str, not {type(item).__name__}")
        value = (rule.value or "").strip()
        if not value:
            raise ValueError("sync_rules: a rule has an empty value")
        other = rules.get(value)
        if other is not None and other.tag != rule.tag:
            raise ValueError(
                f"sync_rules: {value!r} appears with two tags ({other.tag!r} and {rule.tag!r}); "
                "X allows each rule value once"
            )
        rules[value] = StreamRule(value, rule.tag)
    return list(rules.values())


class _SyncStepFailed(Exception):
    # A 2xx answer whose errors list says part of a step was not applied.
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class RulesSync:
    """What :meth:`StreamingClient.sync_rules` changed (or, with ``dry_run``, would change).

    Attributes:
        added: rules added (with their new ids; without ids in a dry run).
        deleted: rules deleted (with their ids).
        unchanged: rules already there and wanted.
        dry_run: ``True`` when nothing was applied.
    """

    added: tuple[StreamRule, ...] = ()
    deleted: tuple[StreamRule, ...] = ()
    unchanged: tuple[StreamRule, ...] = ()
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        """Whether anything was (or would be) added or deleted."""
        return bool(self.added or self.deleted)
