"""API v1.1: :class:`V1Stream`, the observables of one v1.1 stream, declared on
:class:`~rxtweet.substreams.Substreams`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from ..connection import Connection, Item
from ..events import UnknownMessage
from ..operators.pass_through import pass_through
from ..parse import Parsed
from ..substreams import ItemOperator, Substreams
from .convert import status_of
from .framing import DelimitedStats
from .models import (
    DeleteNotice,
    DisconnectNotice,
    LimitNotice,
    ScrubGeoNotice,
    StallWarning,
    Status,
    StatusWithheldNotice,
    UnknownNotice,
    UserWithheldNotice,
    V1Message,
)

__all__ = ["V1Stream", "unknown_as_events"]


def unknown_as_events() -> Callable[[Observable[Item[Any]]], Observable[Item[Any]]]:
    """An operator over a v1.1 connection's items: each parsed
    :class:`~rxtweet.v1.models.UnknownNotice` becomes an :class:`~rxtweet.events.UnknownMessage`
    event (its raw bytes and top-level keys); every other item passes as it is."""

    def on_next_for(observer: abc.ObserverBase[Item[Any]]) -> Callable[[Item[Any]], None]:
        emit = observer.on_next

        def on_next(item: Any) -> None:
            if type(item) is Parsed and type(item.value) is UnknownNotice:
                emit(UnknownMessage(item.raw, item.value.type_keys))
            else:
                emit(item)

        return on_next

    return pass_through(on_next_for)


def _identity(message: V1Message) -> V1Message:
    return message


class V1Stream(Substreams[V1Message]):
    """The observables of one v1.1 stream. It holds observables; it is not one.

    All substreams but :attr:`lines` share one connection (subscribe inside :meth:`hold`
    to attach several before it opens), exactly as :class:`~rxtweet.TweetStream`.

    Attributes:
        items: everything on the shared connection, in order: each message as
            ``Parsed(value, raw)`` (the model and the exact bytes received) and each event.
        lines: cold raw lines (length lines already consumed with ``delimited="length"``);
            each subscription opens its own reconnecting connection.
        messages: every message, typed: a :class:`~rxtweet.v1.Status` or a
            :class:`~rxtweet.v1.Notice` subclass (:class:`~rxtweet.v1.UnknownNotice`
            for unknown types). Match on the type.
        statuses: the :class:`~rxtweet.v1.Status` messages.
        deletes: :class:`~rxtweet.v1.DeleteNotice` (``.id``, ``.user_id``).
        limits: :class:`~rxtweet.v1.LimitNotice` (``.track``).
        scrub_geo: :class:`~rxtweet.v1.ScrubGeoNotice`.
        status_withheld: :class:`~rxtweet.v1.StatusWithheldNotice`.
        user_withheld: :class:`~rxtweet.v1.UserWithheldNotice`.
        warnings: :class:`~rxtweet.v1.StallWarning` (with ``stall_warnings=True``).
        disconnect_messages: :class:`~rxtweet.v1.DisconnectNotice`.
        events: lifecycle events, plus :class:`UnknownMessage` for each message of unknown
            type; completes after ``Disconnected``.
        stats: parse counters; delimited: ``delimited=length`` counters.
    """

    def __init__(
        self, connection: Connection[V1Message], delimited: DelimitedStats | None = None
    ) -> None:
        super().__init__(connection)
        self.messages = self.select(_identity)
        self.statuses: Observable[Status] = self.select(status_of)
        self.deletes = self.of_type(DeleteNotice)
        self.limits = self.of_type(LimitNotice)
        self.scrub_geo = self.of_type(ScrubGeoNotice)
        self.status_withheld = self.of_type(StatusWithheldNotice)
        self.user_withheld = self.of_type(UserWithheldNotice)
        self.warnings = self.of_type(StallWarning)
        self.disconnect_messages = self.of_type(DisconnectNotice)
        self.delimited = delimited if delimited is not None else DelimitedStats()

    def _event_operators(self) -> tuple[ItemOperator, ...]:
        # Unknown messages are events on v1.1 (tweepy logs them): before the split.
        return (unknown_as_events(), *super()._event_operators())
