"""API v2 data models, compatible with tweepy 4.x, but lazy (the machinery: :mod:`rxtweet._model`).

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

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from .._model import Field, Model, _fromisoformat, short

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

_T = TypeVar("_T")

_Dict = dict[str, Any]


class ReferencedTweet(Model):
    """A ``referenced_tweets`` entry: ``{"type": "quoted"|"retweeted"|"replied_to", "id"}``."""

    __slots__ = ()

    id = Field[int](int, required=True)
    type = Field[str | None]()

    def __repr__(self) -> str:
        rtype = self.data.get("type")
        extra = f" type={rtype}" if rtype is not None else ""
        return f"<ReferencedTweet id={self.data.get('id')}{extra}>"


def _edit_controls(raw: _Dict) -> _Dict:
    # Like tweepy: edits_remaining as int, editable_until as datetime (a converted copy;
    # data["edit_controls"] stays raw).
    value = dict(raw)
    if value.get("edits_remaining") is not None:
        value["edits_remaining"] = int(value["edits_remaining"])
    if value.get("editable_until") is not None:
        value["editable_until"] = _fromisoformat(value["editable_until"])
    return value


def _int_list(raw: list[Any]) -> list[int]:
    return [int(i) for i in raw]


def _referenced_tweets(raw: list[_Dict]) -> list[ReferencedTweet]:
    return [ReferencedTweet(r) for r in raw]


class Tweet(Model):
    """A v2 Tweet. ``id`` and ``text`` are always sent; every other field is optional
    (``None`` when absent; ``context_annotations`` is ``[]`` when absent, as in tweepy).

    ``referenced_tweets``, ``edit_history_tweet_ids`` and ``edit_controls`` are built once
    and cached, so that ``tweet.referenced_tweets is tweet.referenced_tweets``.
    """

    __slots__ = ("_cache",)

    _cache: dict[str, Any] | None

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._cache = None

    id = Field[int](int, required=True)
    text = Field[str](required=True)
    attachments = Field[_Dict | None]()
    author_id = Field[int | None](int)
    context_annotations = Field[list[_Dict]](default=list)
    conversation_id = Field[int | None](int)
    created_at = Field[datetime | None](_fromisoformat)
    entities = Field[_Dict | None]()
    geo = Field[_Dict | None]()
    in_reply_to_user_id = Field[int | None](int)
    lang = Field[str | None]()
    non_public_metrics = Field[_Dict | None]()
    note_tweet = Field[_Dict | None]()
    organic_metrics = Field[_Dict | None]()
    possibly_sensitive = Field[bool | None]()
    promoted_metrics = Field[_Dict | None]()
    public_metrics = Field[_Dict | None]()
    reply_settings = Field[str | None]()
    source = Field[str | None]()
    withheld = Field[_Dict | None]()

    def _once(self, name: str, build: Callable[[Any], _T]) -> _T | None:
        # A stream's parser builds tweets without __init__ (one Python call less a message,
        # see rxtweet.v2.convert), so the slot may be unset as well as None.
        try:
            cache = self._cache
        except AttributeError:
            cache = None
        if cache is None:
            cache = self._cache = {}
        elif name in cache:
            value: _T | None = cache[name]
            return value
        raw = self.data.get(name)
        value = cache[name] = None if raw is None else build(raw)
        return value

    @property
    def edit_history_tweet_ids(self) -> list[int] | None:
        return self._once("edit_history_tweet_ids", _int_list)

    @property
    def edit_controls(self) -> _Dict | None:
        """``edits_remaining`` as ``int``, ``editable_until`` as ``datetime``."""
        return self._once("edit_controls", _edit_controls)

    @property
    def referenced_tweets(self) -> list[ReferencedTweet] | None:
        return self._once("referenced_tweets", _referenced_tweets)

    def __len__(self) -> int:
        return len(self.text)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Tweet id={self.data.get('id')} text={short(self.data.get('text'))}>"


class User(Model):
    """A v2 User. ``id``, ``name`` and ``username`` are always sent."""

    __slots__ = ()

    id = Field[int](int, required=True)
    name = Field[str](required=True)
    username = Field[str](required=True)
    created_at = Field[datetime | None](_fromisoformat)
    description = Field[str | None]()
    entities = Field[_Dict | None]()
    location = Field[str | None]()
    pinned_tweet_id = Field[int | None](int)
    profile_image_url = Field[str | None]()
    protected = Field[bool | None]()
    public_metrics = Field[_Dict | None]()
    url = Field[str | None]()
    verified = Field[bool | None]()
    verified_type = Field[str | None]()
    withheld = Field[_Dict | None]()

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        d = self.data
        return f"<User id={d.get('id')} name={d.get('name')} username={d.get('username')}>"


class Media(Model):
    """A v2 media object. Identified (equality, hash) by ``media_key``, as in tweepy."""

    __slots__ = ()

    media_key = Field[str](required=True)
    type = Field[str](required=True)
    url = Field[str | None]()
    duration_ms = Field[int | None]()
    height = Field[int | None]()
    non_public_metrics = Field[_Dict | None]()
    organic_metrics = Field[_Dict | None]()
    preview_image_url = Field[str | None]()
    promoted_metrics = Field[_Dict | None]()
    public_metrics = Field[_Dict | None]()
    width = Field[int | None]()
    alt_text = Field[str | None]()
    variants = Field[list[_Dict] | None]()

    def _key(self) -> Any:
        return self.data.get("media_key")

    def __repr__(self) -> str:
        return f"<Media media_key={self.data.get('media_key')} type={self.data.get('type')}>"


class Place(Model):
    """A v2 place. ``id`` is a string (e.g. ``"a0583a9994e6bf1b"``), as in tweepy."""

    __slots__ = ()

    full_name = Field[str](required=True)
    id = Field[str](required=True)
    contained_within = Field[list[str]](default=list)
    country = Field[str | None]()
    country_code = Field[str | None]()
    geo = Field[_Dict | None]()
    name = Field[str | None]()
    place_type = Field[str | None]()

    def __str__(self) -> str:
        return self.full_name

    def __repr__(self) -> str:
        return f"<Place id={self.data.get('id')} full_name={self.data.get('full_name')}>"


class Poll(Model):
    """A v2 poll. ``id`` is a string, as in tweepy. Like tweepy, iterating a poll yields its
    options and ``len(poll)`` is the number of options."""

    __slots__ = ()

    id = Field[str](required=True)
    options = Field[list[_Dict]](required=True)
    duration_minutes = Field[int | None]()
    end_datetime = Field[datetime | None](_fromisoformat)
    voting_status = Field[str | None]()

    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        return iter(self.options)

    def __len__(self) -> int:
        return len(self.options)

    def __repr__(self) -> str:
        return f"<Poll id={self.data.get('id')} options={self.data.get('options')}>"


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
INCLUDE_MODELS: dict[str, type[Model]] = {
    "media": Media,
    "places": Place,
    "polls": Poll,
    "tweets": Tweet,
    "users": User,
}
