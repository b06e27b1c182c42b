"""API v2 data models, compatible with tweepy 4.x, but lazy.

The classes mirror tweepy's :class:`~tweepy.Tweet`, :class:`~tweepy.User`,
:class:`~tweepy.Media`, :class:`~tweepy.Place`, :class:`~tweepy.Poll`,
:class:`~tweepy.ReferencedTweet`, :class:`~tweepy.StreamRule`, ``StreamResponse`` and
:class:`~tweepy.Response`: same attribute names, same conversions (ids to ``int``,
timestamps to tz-aware UTC ``datetime``, ``referenced_tweets`` to :class:`ReferencedTweet`),
same mapping behaviour, equality and hashing.

**Laziness.** tweepy converts every field when a model is built. Here, building a model
only stores the raw dict (``model.data``); every attribute is a property that converts
when it is read. Scalars (``int`` ids, ``datetime``) are recomputed on each read (cheaper
than caching them, since most are read once if at all); values that are new mutable
objects (``referenced_tweets``, ``edit_history_tweet_ids``, ``edit_controls``) are built
once and cached per instance, so ``tweet.referenced_tweets is tweet.referenced_tweets``.
A consequence: a malformed field (say ``created_at`` that is not a timestamp) never
fails message parsing; it raises ``ValueError`` where the attribute is read. Likewise a
missing *required* field (``Tweet.id``, ``User.username`` …), which makes tweepy's
constructor raise ``KeyError``, is here an ``AttributeError`` on access (so ``hasattr``
works) and a ``KeyError`` through ``model["id"]``. Absent optional fields are ``None``,
including ``edit_history_tweet_ids`` (tweepy warns and leaves it unset; pre-2022 data has
none); ``Tweet.context_annotations`` and ``Place.contained_within`` are ``[]``, as in tweepy.

**Mapping behaviour** is tweepy's ``DataMapping`` exactly:

* ``model[key]`` returns what ``getattr(model, key)`` returns: the *converted* value for a
  modelled field (``tweet["id"]`` is an ``int``; an absent optional field gives ``None``)
  and the raw value for any other key of ``model.data`` (``KeyError`` if absent). Use
  ``model.data[key]`` for the raw value of any field.
* ``key in model``, ``iter(model)`` and ``len(model)`` follow ``model.data`` — except, as in
  tweepy, ``len(tweet)`` is ``len(tweet.text)`` and a :class:`Poll` iterates over (and
  counts) its options.
* ``model.get``, ``keys``, ``items``, ``values`` come from :class:`collections.abc.Mapping`.

**Unknown keys** stay in ``model.data`` and are reachable as ``model["key"]`` and, as in
tweepy, as attributes (``__getattr__`` falls back to ``model.data``). The fallback means a
misspelt attribute is an ``AttributeError`` at run time, not a type error (``__getattr__``
is typed ``Any``). Names starting with ``_`` never fall back.

**Identity** is tweepy's: equal when of the same class (``isinstance``) with the same
``id`` (``media_key`` for :class:`Media`), hashed by it. Unlike tweepy, a :class:`Place`
or :class:`Poll` (string ids) is hashable.

Models are read-only views: attributes cannot be assigned (tweepy's can), and
``model.data`` is never modified (tweepy rewrites ``edit_controls`` inside ``data``; here
only the attribute is converted). ``repr(tweet)`` shortens the text to 40 characters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar, NamedTuple

__all__ = [
    "INCLUDE_MODELS",
    "Media",
    "Place",
    "Poll",
    "ReferencedTweet",
    "Response",
    "StreamResponse",
    "StreamRule",
    "Tweet",
    "User",
]

# The API's timestamps look like "2021-04-01T15:52:31.000Z". Python >= 3.11 parses the "Z",
# giving a tz-aware UTC datetime equal to tweepy's strptime("%Y-%m-%dT%H:%M:%S.%f%z") result,
# ~50x faster (0.14 us vs 7 us).
_fromisoformat = datetime.fromisoformat


def _short(text: Any, limit: int = 40) -> str:
    if isinstance(text, str) and len(text) > limit:
        return repr(text[:limit] + "…")
    return repr(text)


class _Model(Mapping[str, Any]):
    """Common base: a read-only, lazily converting view of one API object (``data``)."""

    __slots__ = ("data",)

    #: Names of the modelled fields (the properties), filled in by ``__init_subclass__``.
    _FIELDS: ClassVar[frozenset[str]] = frozenset()

    data: dict[str, Any]

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._FIELDS = frozenset(
            name
            for klass in cls.__mro__
            for name, value in vars(klass).items()
            if isinstance(value, property)
        )

    # -- tweepy DataMapping ---------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup failed: unknown fields fall back to the raw data.
        # "_*" and "data" never do (copy/pickle probe dunders before "data" is set).
        if name.startswith("_") or name == "data":
            raise AttributeError(name)
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}"
            ) from None

    def __getitem__(self, key: str) -> Any:
        if key in self._FIELDS:
            try:
                return getattr(self, key)
            except AttributeError:
                raise KeyError(key) from None
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    # -- identity: tweepy's HashableID ----------------------------------------------------

    def _key(self) -> Any:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, self.__class__):
            return bool(self._key() == other._key())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())


class ReferencedTweet(_Model):
    """A ``referenced_tweets`` entry: ``{"type": "quoted"|"retweeted"|"replied_to", "id"}``."""

    __slots__ = ()

    @property
    def id(self) -> int:
        try:
            return int(self.data["id"])
        except KeyError:
            raise AttributeError("id") from None

    @property
    def type(self) -> str | None:
        return self.data.get("type")

    def __repr__(self) -> str:
        rtype = self.data.get("type")
        extra = f" type={rtype}" if rtype is not None else ""
        return f"<ReferencedTweet id={self.data.get('id')}{extra}>"


class Tweet(_Model):
    """A v2 Tweet. ``id`` and ``text`` are always sent; every other field is optional
    (``None`` when absent; ``context_annotations`` is ``[]`` when absent, as in tweepy)."""

    __slots__ = ("_cache",)

    _cache: dict[str, Any] | None

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._cache = None

    def _cached(self, name: str) -> Any:
        cache = self._cache
        if cache is None:
            return _MISSING
        return cache.get(name, _MISSING)

    def _store(self, name: str, value: Any) -> Any:
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        cache[name] = value
        return value

    @property
    def id(self) -> int:
        try:
            return int(self.data["id"])
        except KeyError:
            raise AttributeError("id") from None

    @property
    def text(self) -> str:
        try:
            return self.data["text"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("text") from None

    @property
    def edit_history_tweet_ids(self) -> list[int] | None:
        value = self._cached("edit_history_tweet_ids")
        if value is _MISSING:
            raw = self.data.get("edit_history_tweet_ids")
            value = self._store(
                "edit_history_tweet_ids", None if raw is None else [int(i) for i in raw]
            )
        return value  # type: ignore[no-any-return]

    @property
    def attachments(self) -> dict[str, Any] | None:
        return self.data.get("attachments")

    @property
    def author_id(self) -> int | None:
        value = self.data.get("author_id")
        return None if value is None else int(value)

    @property
    def context_annotations(self) -> list[dict[str, Any]]:
        value = self.data.get("context_annotations")
        if value is None:
            value = self._cached("context_annotations")
            if value is _MISSING:
                value = self._store("context_annotations", [])
        return value  # type: ignore[no-any-return]

    @property
    def conversation_id(self) -> int | None:
        value = self.data.get("conversation_id")
        return None if value is None else int(value)

    @property
    def created_at(self) -> datetime | None:
        value = self.data.get("created_at")
        return None if value is None else _fromisoformat(value)

    @property
    def edit_controls(self) -> dict[str, Any] | None:
        """Like tweepy: ``edits_remaining`` as ``int``, ``editable_until`` as ``datetime``
        (a converted copy; ``data["edit_controls"]`` stays raw)."""
        value = self._cached("edit_controls")
        if value is _MISSING:
            raw = self.data.get("edit_controls")
            if raw is not None:
                raw = dict(raw)
                if raw.get("edits_remaining") is not None:
                    raw["edits_remaining"] = int(raw["edits_remaining"])
                if raw.get("editable_until") is not None:
                    raw["editable_until"] = _fromisoformat(raw["editable_until"])
            value = self._store("edit_controls", raw)
        return value  # type: ignore[no-any-return]

    @property
    def entities(self) -> dict[str, Any] | None:
        return self.data.get("entities")

    @property
    def geo(self) -> dict[str, Any] | None:
        return self.data.get("geo")

    @property
    def in_reply_to_user_id(self) -> int | None:
        value = self.data.get("in_reply_to_user_id")
        return None if value is None else int(value)

    @property
    def lang(self) -> str | None:
        return self.data.get("lang")

    @property
    def non_public_metrics(self) -> dict[str, Any] | None:
        return self.data.get("non_public_metrics")

    @property
    def note_tweet(self) -> dict[str, Any] | None:
        return self.data.get("note_tweet")

    @property
    def organic_metrics(self) -> dict[str, Any] | None:
        return self.data.get("organic_metrics")

    @property
    def possibly_sensitive(self) -> bool | None:
        return self.data.get("possibly_sensitive")

    @property
    def promoted_metrics(self) -> dict[str, Any] | None:
        return self.data.get("promoted_metrics")

    @property
    def public_metrics(self) -> dict[str, Any] | None:
        return self.data.get("public_metrics")

    @property
    def referenced_tweets(self) -> list[ReferencedTweet] | None:
        value = self._cached("referenced_tweets")
        if value is _MISSING:
            raw = self.data.get("referenced_tweets")
            value = self._store(
                "referenced_tweets", None if raw is None else [ReferencedTweet(r) for r in raw]
            )
        return value  # type: ignore[no-any-return]

    @property
    def reply_settings(self) -> str | None:
        return self.data.get("reply_settings")

    @property
    def source(self) -> str | None:
        return self.data.get("source")

    @property
    def withheld(self) -> dict[str, Any] | None:
        return self.data.get("withheld")

    def __len__(self) -> int:
        return len(self.text)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Tweet id={self.data.get('id')} text={_short(self.data.get('text'))}>"


class User(_Model):
    """A v2 User. ``id``, ``name`` and ``username`` are always sent."""

    __slots__ = ()

    @property
    def id(self) -> int:
        try:
            return int(self.data["id"])
        except KeyError:
            raise AttributeError("id") from None

    @property
    def name(self) -> str:
        try:
            return self.data["name"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("name") from None

    @property
    def username(self) -> str:
        try:
            return self.data["username"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("username") from None

    @property
    def created_at(self) -> datetime | None:
        value = self.data.get("created_at")
        return None if value is None else _fromisoformat(value)

    @property
    def description(self) -> str | None:
        return self.data.get("description")

    @property
    def entities(self) -> dict[str, Any] | None:
        return self.data.get("entities")

    @property
    def location(self) -> str | None:
        return self.data.get("location")

    @property
    def pinned_tweet_id(self) -> int | None:
        value = self.data.get("pinned_tweet_id")
        return None if value is None else int(value)

    @property
    def profile_image_url(self) -> str | None:
        return self.data.get("profile_image_url")

    @property
    def protected(self) -> bool | None:
        return self.data.get("protected")

    @property
    def public_metrics(self) -> dict[str, Any] | None:
        return self.data.get("public_metrics")

    @property
    def url(self) -> str | None:
        return self.data.get("url")

    @property
    def verified(self) -> bool | None:
        return self.data.get("verified")

    @property
    def verified_type(self) -> str | None:
        return self.data.get("verified_type")

    @property
    def withheld(self) -> dict[str, Any] | None:
        return self.data.get("withheld")

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        d = self.data
        return f"<User id={d.get('id')} name={d.get('name')} username={d.get('username')}>"


class Media(_Model):
    """A v2 media object. Identified (equality, hash) by ``media_key``, as in tweepy."""

    __slots__ = ()

    @property
    def media_key(self) -> str:
        try:
            return self.data["media_key"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("media_key") from None

    @property
    def type(self) -> str:
        try:
            return self.data["type"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("type") from None

    @property
    def url(self) -> str | None:
        return self.data.get("url")

    @property
    def duration_ms(self) -> int | None:
        return self.data.get("duration_ms")

    @property
    def height(self) -> int | None:
        return self.data.get("height")

    @property
    def non_public_metrics(self) -> dict[str, Any] | None:
        return self.data.get("non_public_metrics")

    @property
    def organic_metrics(self) -> dict[str, Any] | None:
        return self.data.get("organic_metrics")

    @property
    def preview_image_url(self) -> str | None:
        return self.data.get("preview_image_url")

    @property
    def promoted_metrics(self) -> dict[str, Any] | None:
        return self.data.get("promoted_metrics")

    @property
    def public_metrics(self) -> dict[str, Any] | None:
        return self.data.get("public_metrics")

    @property
    def width(self) -> int | None:
        return self.data.get("width")

    @property
    def alt_text(self) -> str | None:
        return self.data.get("alt_text")

    @property
    def variants(self) -> list[dict[str, Any]] | None:
        return self.data.get("variants")

    def _key(self) -> Any:
        return self.data.get("media_key")

    def __repr__(self) -> str:
        return f"<Media media_key={self.data.get('media_key')} type={self.data.get('type')}>"


class Place(_Model):
    """A v2 place. ``id`` is a string (e.g. ``"a0583a9994e6bf1b"``), as in tweepy."""

    __slots__ = ()

    @property
    def full_name(self) -> str:
        try:
            return self.data["full_name"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("full_name") from None

    @property
    def id(self) -> str:
        try:
            return self.data["id"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("id") from None

    @property
    def contained_within(self) -> list[str]:
        value = self.data.get("contained_within")
        return [] if value is None else value

    @property
    def country(self) -> str | None:
        return self.data.get("country")

    @property
    def country_code(self) -> str | None:
        return self.data.get("country_code")

    @property
    def geo(self) -> dict[str, Any] | None:
        return self.data.get("geo")

    @property
    def name(self) -> str | None:
        return self.data.get("name")

    @property
    def place_type(self) -> str | None:
        return self.data.get("place_type")

    def __str__(self) -> str:
        return self.full_name

    def __repr__(self) -> str:
        return f"<Place id={self.data.get('id')} full_name={self.data.get('full_name')}>"


class Poll(_Model):
    """A v2 poll. ``id`` is a string, as in tweepy. Like tweepy, iterating a poll yields its
    options and ``len(poll)`` is the number of options."""

    __slots__ = ()

    @property
    def id(self) -> str:
        try:
            return self.data["id"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("id") from None

    @property
    def options(self) -> list[dict[str, Any]]:
        try:
            return self.data["options"]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError("options") from None

    @property
    def duration_minutes(self) -> int | None:
        return self.data.get("duration_minutes")

    @property
    def end_datetime(self) -> datetime | None:
        value = self.data.get("end_datetime")
        return None if value is None else _fromisoformat(value)

    @property
    def voting_status(self) -> str | None:
        return self.data.get("voting_status")

    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        return iter(self.options)

    def __len__(self) -> int:
        return len(self.options)

    def __repr__(self) -> str:
        return f"<Poll id={self.data.get('id')} options={self.data.get('options')}>"


class _Missing:
    __slots__ = ()


_MISSING: Any = _Missing()


class StreamRule(NamedTuple):
    """A filtered-stream rule, as tweepy's ``StreamRule`` (same fields, same order).

    ``id`` is always a ``str`` (or ``None``), as the rules API sends it. Some stream messages
    (2021) carried ``matching_rules[].id`` as a JSON *number* beyond 2**53; it is parsed
    exactly and converted with ``str()``, so it compares equal to the rules API's id.
    """

    value: str | None = None
    tag: str | None = None
    id: str | None = None


class StreamResponse(NamedTuple):
    """One stream message, as tweepy's ``StreamResponse``.

    ``data`` is the :class:`Tweet` (``None`` for a system message such as an
    operational-disconnect, which has only ``errors``). ``includes`` maps ``"users"``,
    ``"tweets"``, ``"media"``, ``"places"`` and ``"polls"`` to lists of models and keeps
    any other key raw (``{}`` when absent). ``errors`` is the raw list of problem dicts
    (``[]`` when absent). ``matching_rules`` is a list of :class:`StreamRule` (``[]`` when
    absent).
    """

    data: Tweet | None
    includes: dict[str, Any]
    errors: list[dict[str, Any]]
    matching_rules: list[StreamRule]


class Response(NamedTuple):
    """A REST response, as tweepy's ``Client`` returns it (``data``, ``includes``, ``errors``,
    ``meta``)."""

    data: Any
    includes: dict[str, Any]
    errors: list[dict[str, Any]]
    meta: dict[str, Any]


#: includes key -> model class, as tweepy's ``Client._process_includes``.
INCLUDE_MODELS: dict[str, type[_Model]] = {
    "media": Media,
    "places": Place,
    "polls": Poll,
    "tweets": Tweet,
    "users": User,
}
