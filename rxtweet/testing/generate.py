"""Realistic, deterministic API v2 stream messages for tests, demos and benchmarks.

:func:`generate_v2_messages` yields an endless stream of Tweet messages shaped like real
``GET /2/tweets/search/stream`` output with the usual ``expansions``/``*.fields`` (compare
the recorded twarc-csv file in ``/work/shared/data/real/v2``)::

    {"data": {"id", "text", "edit_history_tweet_ids", "author_id", "conversation_id",
              "created_at", "lang", "source", "possibly_sensitive", "reply_settings",
              "public_metrics", "entities"?, "referenced_tweets"?, "in_reply_to_user_id"?},
     "includes": {"users": [...], "tweets"?: [...]},
     "matching_rules"?: [{"id": "<digits>", "tag": "..."}]}

The text is multilingual (English, Japanese, Spanish, Portuguese, Arabic, Hindi, Korean,
Turkish, French, Indonesian, Thai, Russian, German) with emoji, hashtags, mentions and t.co
links; ``entities`` offsets are code-point offsets into ``text``. Ids are snowflakes that
increase strictly; ``created_at`` is derived from the id's timestamp, which follows a fixed
2024 timeline or, with ``clock=time.time``, the time each tweet is generated.

Example::

    from itertools import islice
    from rxtweet.testing import FakeStreamServer, generate_v2_messages

    with FakeStreamServer(messages=islice(generate_v2_messages(seed=7), 1000)) as server:
        ...

The other v2 streams have their own generators, each endless and deterministic per ``seed``,
shaped as reference section 2 and the OpenAPI components describe them:
:func:`generate_compliance_messages` (``"tweets"``, ``"users"`` or ``"likes"``),
:func:`generate_like_messages`, :func:`generate_label_messages` and
:func:`generate_activity_messages`.

Messages are fresh dicts, but nested objects that never change (a user's ``public_metrics``
or ``entities``) may be shared between messages: treat messages as read-only.
"""

# The corpus is deliberately multilingual: full-width and dotless-i characters are intended.
# ruff: noqa: RUF001

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "generate_activity_messages",
    "generate_compliance_messages",
    "generate_label_messages",
    "generate_like_messages",
    "generate_v2_messages",
]

_TWEPOCH_MS = 1_288_834_974_657
_START_MS = 1_704_888_000_000  # 2024-01-10T12:00:00Z

# (lang, sentences, hashtags). Sentences are short, as in a sample stream.
_CORPUS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "en",
        (
            "Just finished my morning run and the sunrise was unreal",
            "Can't believe it's already Wednesday",
            "Who else is watching the game tonight?",
            "New blog post about reactive streams in Python is up",
            "My cat just knocked my coffee off the desk. Again.",
            'He said "it works on my machine" and left',
            "Thread: 5 things I learned shipping a streaming client \\o/",
            "Coffee first, questions later",
        ),
        ("Python", "MondayMotivation", "cats", "NowPlaying", "100DaysOfCode", "NBA"),
    ),
    (
        "ja",
        (
            "今日はとても良い天気ですね",
            "新しいアルバムが最高すぎる…！",
            "お疲れ様でした、また明日",
            "ラーメン食べに行きたい",
            "吟味しなおしにより診断できるキャラクター数が増加",
        ),
        ("拡散希望", "おはようVtuber", "イラスト", "猫"),
    ),
    (
        "es",
        (
            "Qué día tan bonito para salir a pasear",
            "No puedo creer lo que acaba de pasar en el partido",
            "Buenos días a todos, ¡feliz jueves!",
        ),
        ("FelizJueves", "LaLiga", "Música"),
    ),
    (
        "pt",
        (
            "Bom dia, hoje é dia de praia",
            "Alguém mais assistindo a novela?",
            "Que saudade de você",
        ),
        ("BBB24", "Futebol", "BomDia"),
    ),
    (
        "ar",
        (
            "صباح الخير يا أصدقاء",
            "اللهم اجعل هذا اليوم خيرا لنا جميعا",
            "مبروك للفريق على الفوز",
        ),
        ("السعودية", "كرة_القدم"),
    ),
    ("hi", ("सुप्रभात दोस्तों", "आज का मैच शानदार था"), ("क्रिकेट", "भारत")),
    ("ko", ("오늘도 화이팅!", "새 앨범 너무 좋아요", "점심 뭐 먹지"), ("방탄소년단", "케이팝")),
    ("tr", ("Günaydın herkese", "kisinin ahlakli olmasi lazim"), ("buca", "Galatasaray")),
    ("fr", ("Bonne journée à tous", "Quel match ce soir !"), ("PSG", "Paris")),
    ("in", ("Selamat pagi semuanya", "Hujan lagi hari ini"), ("Jakarta", "Indonesia")),
    ("th", ("สวัสดีตอนเช้าค่ะ", "วันนี้อากาศร้อนมาก"), ("ไทย",)),
    ("ru", ("Доброе утро всем", "Какая сегодня погода?"), ("Москва",)),
    ("de", ("Guten Morgen zusammen", "Schönes Wochenende euch allen"), ("Fußball", "Berlin")),
)
# Weights roughly follow the languages of the recorded 2022 sample stream.
_LANG_WEIGHTS = (34, 16, 9, 8, 6, 3, 4, 3, 3, 4, 2, 3, 2)
_EMOJI = ("😂", "❤️", "🔥", "🙏", "😭", "✨", "👍", "🥺", "💙", "🎉", "👀", "🤣", "😍", "🐈", "⚽")
_SOURCES = (
    "Twitter for iPhone",
    "Twitter for Android",
    "Twitter Web App",
    "TweetDeck",
    "Instagram",
    "IFTTT",
)
_FIRST = ("Ana", "Kenji", "Sara", "Omar", "Lucía", "Min", "Priya", "João", "Léa", "Ivan", "Ayşe")
_LAST = ("Silva", "Tanaka", "Smith", "Haddad", "García", "Kim", "Sharma", "Dupont", "Petrov")
_DECOR = ("", "", "", " 💙", " ✨", " 🏳️‍🌈", " | 日本語OK", " (she/her)")
_PLACES = ("Earth", "London", "東京", "São Paulo", "Jakarta", "Riyadh", "Seoul", "", "Paris")
_BIOS = (
    "Coffee, code and cats.",
    "音楽とアニメが好き",
    "Opinions are my own. #OpenSource",
    "Vivir para contarla",
    "",
)
_T_CO = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_RULES = (
    ("1745000000000000100", "cats with images"),
    ("1745000000000000101", "python news"),
    ("1745000000000000102", "multilingual sample"),
)


def _make_users(rng: random.Random, n: int) -> list[dict[str, Any]]:
    users = []
    for i in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        username = f"{first[:3]}{last[:4]}{rng.randrange(10, 99_999)}".encode(
            "ascii", "ignore"
        ).decode()[:15]
        created = datetime.fromtimestamp(rng.randrange(1_170_000_000, 1_700_000_000), UTC)
        # Old accounts have short ids, newer ones snowflakes.
        user_id = (
            str(rng.randrange(10_000_000, 4_000_000_000))
            if i % 3
            else str(rng.randrange(700_000_000_000_000_000, 1_700_000_000_000_000_000))
        )
        users.append(
            {
                "id": user_id,
                "name": f"{first} {last}{rng.choice(_DECOR)}",
                "username": username or f"user{i}",
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "description": rng.choice(_BIOS),
                "location": rng.choice(_PLACES),
                "protected": False,
                "verified": rng.random() < 0.05,
                "profile_image_url": (
                    f"https://pbs.twimg.com/profile_images/{rng.randrange(10**18, 2 * 10**18)}"
                    f"/{''.join(rng.choices(_T_CO, k=8))}_normal.jpg"
                ),
                "public_metrics": {
                    "followers_count": int(rng.paretovariate(1.2) * 40),
                    "following_count": rng.randrange(0, 3000),
                    "tweet_count": rng.randrange(1, 200_000),
                    "listed_count": rng.randrange(0, 50),
                },
                "url": "",
            }
        )
    return users


def generate_v2_messages(
    seed: int = 0,
    *,
    expansions: bool = True,
    matching_rules: bool = False,
    clock: Callable[[], float] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield realistic API v2 stream Tweet messages forever, deterministically per ``seed``.

    Args:
        seed: the same seed always yields the same messages. Seeds 0-1023 never share an
            id (the seed picks the snowflake's worker bits).
        expansions: add ``includes.users`` (author, plus the replied-to or retweeted user)
            and, for retweets and quotes, ``includes.tweets``.
        matching_rules: add filtered-stream ``matching_rules`` (``id`` strings, ``tag``).
            :class:`~rxtweet.testing.FakeStreamServer` replaces them with the rules that
            really match unless it runs with ``match_rules=False``.
        clock: ``None`` (default): a fixed timeline from 2024-01-10T12:00:00Z, 0-3 ms per
            tweet, so the same seed gives the same ids. A function returning epoch seconds
            (``time.time``): each tweet is stamped when it is generated - the server pulls
            the next message just before sending it, so ``created_at`` and the Snowflake id
            (``(ms - 1288834974657) << 22 | worker | seq``) follow that clock, and lag
            (receive time minus creation time) can be tested; a clock that goes back is
            ignored (ids keep increasing). Text, users and entities stay deterministic.

    ``created_at`` is the id's time truncated to the second (X sends ``.000Z``); the id
    carries the millisecond. Use :func:`itertools.islice` to take a finite number.
    """
    rng = random.Random(seed)
    rand = rng.random
    randrange = rng.randrange
    users = _make_users(rng, 400)
    # Pre-generated t.co links: building them per message would dominate the cost.
    links = [f"https://t.co/{''.join(rng.choices(_T_CO, k=10))}" for _ in range(512)]
    langs = rng.choices(range(len(_CORPUS)), weights=_LANG_WEIGHTS, k=4096)
    worker = (seed % 1024) << 12
    ms = _START_MS + (seed % 86_400) * 1000
    seq = 0
    second = -1
    created_at = ""
    n_users = len(users)
    i = 0
    while True:
        # Snowflake id: strictly increasing (time advances 0-3 ms; seq within a ms).
        step = randrange(4)  # drawn with a clock too, so the rest stays the same per seed
        if clock is not None:
            now_ms = int(clock() * 1000)
            step = now_ms - ms if now_ms > ms else 0
        if step:
            ms += step
            seq = 0
        else:
            seq += 1
            if seq > 0xFFF:  # 4096 tweets in one millisecond: borrow the next one
                ms += 1
                seq = 0
        tweet_id = str(((ms - _TWEPOCH_MS) << 22) | worker | (seq & 0xFFF))
        if ms // 1000 != second:
            second = ms // 1000
            created_at = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

        lang, sentences, tags = _CORPUS[langs[i & 4095]]
        author = users[randrange(n_users)]
        kind = rand()  # < .25 retweet, < .40 reply, < .47 quote, else original
        other = users[randrange(n_users)] if kind < 0.47 else None

        parts: list[str] = []
        pos = 0
        mentions: list[dict[str, Any]] = []
        hashtags: list[dict[str, Any]] = []
        urls: list[dict[str, Any]] = []
        if other is not None and kind < 0.40:
            handle = "@" + other["username"]
            mentions.append(
                {"start": 3 if kind < 0.25 else 0, "end": 0, "username": other["username"]}
            )
            prefix = f"RT {handle}: " if kind < 0.25 else f"{handle} "
            mentions[0]["end"] = mentions[0]["start"] + len(handle)
            mentions[0]["id"] = other["id"]
            parts.append(prefix)
            pos = len(prefix)
        sentence = sentences[randrange(len(sentences))]
        parts.append(sentence)
        pos += len(sentence)
        r = rand()
        if r < 0.55:
            for _ in range(1 + (r < 0.15) + (r < 0.05)):
                tag = tags[randrange(len(tags))]
                parts.append(" #")
                parts.append(tag)
                hashtags.append({"start": pos + 1, "end": pos + 2 + len(tag), "tag": tag})
                pos += 2 + len(tag)
        r = rand()
        if r < 0.45:
            emoji = _EMOJI[randrange(len(_EMOJI))] * (1 + (r < 0.1) * 2)
            parts.append(" " + emoji)
            pos += 1 + len(emoji)
        if rand() < 0.3:
            link = links[i & 511]
            parts.append(" ")
            parts.append(link)
            urls.append(
                {
                    "start": pos + 1,
                    "end": pos + 1 + len(link),
                    "url": link,
                    "expanded_url": f"https://example.com/{lang}/{tweet_id[-6:]}",
                    "display_url": f"example.com/{lang}/{tweet_id[-6:]}",
                }
            )
            pos += 1 + len(link)
        if rand() < 0.05:
            parts.append("\n\n")  # real tweets carry raw newlines
        text = "".join(parts)

        data: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "edit_history_tweet_ids": [tweet_id],
            "author_id": author["id"],
            "conversation_id": tweet_id,
            "created_at": created_at,
            "lang": lang,
            "source": _SOURCES[randrange(len(_SOURCES))],
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "public_metrics": {
                "retweet_count": 0,
                "reply_count": 0,
                "like_count": 0,
                "quote_count": 0,
                "bookmark_count": 0,
                "impression_count": 0,
            },
        }
        entities: dict[str, Any] = {}
        if mentions:
            entities["mentions"] = mentions
        if hashtags:
            entities["hashtags"] = hashtags
        if urls:
            entities["urls"] = urls
        if entities:
            data["entities"] = entities

        referenced: dict[str, Any] | None = None
        if other is not None:
            ref_id = str(int(tweet_id) - randrange(1 << 22, 1 << 40))
            if kind < 0.25:
                data["referenced_tweets"] = [{"type": "retweeted", "id": ref_id}]
                referenced = {
                    "id": ref_id,
                    "text": text[mentions[0]["end"] + 2 :],
                    "author_id": other["id"],
                    "public_metrics": {
                        "retweet_count": randrange(1, 5000),
                        "reply_count": randrange(0, 300),
                        "like_count": randrange(1, 20_000),
                        "quote_count": randrange(0, 100),
                    },
                }
            elif kind < 0.40:
                data["referenced_tweets"] = [{"type": "replied_to", "id": ref_id}]
                data["in_reply_to_user_id"] = other["id"]
                data["conversation_id"] = ref_id
            else:
                data["referenced_tweets"] = [{"type": "quoted", "id": ref_id}]
                referenced = {
                    "id": ref_id,
                    "text": sentences[0],
                    "author_id": other["id"],
                    "lang": lang,
                }

        message: dict[str, Any] = {"data": data}
        if expansions:
            includes: dict[str, Any] = {
                "users": [author.copy()] if other is None else [author.copy(), other.copy()]
            }
            if referenced is not None:
                includes["tweets"] = [referenced]
            message["includes"] = includes
        if matching_rules:
            rule_id, rule_tag = _RULES[i % 3]
            rules = [{"id": rule_id, "tag": rule_tag}]
            if i % 7 == 0:
                second_id, second_tag = _RULES[(i + 1) % 3]
                rules.append({"id": second_id, "tag": second_tag})
            message["matching_rules"] = rules
        i += 1
        yield message


# --------------------------------------------------------------------------- other v2 streams


def _stamp(ms: int) -> str:
    """X's timestamp format: ``2024-01-10T12:00:00.000Z`` (milliseconds)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


class _Timeline:
    """Snowflake ids and event times that move forward 0-40 ms per event, per seed."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        self._rng = rng
        self.ms = _START_MS + (seed % 86_400) * 1000
        self._worker = (seed % 1024) << 12
        self._seq = 0

    def tick(self) -> None:
        step = self._rng.randrange(41)
        if step:
            self.ms += step
            self._seq = 0
        else:
            self._seq = (self._seq + 1) & 0xFFF

    def snowflake(self, back_ms: int = 0) -> str:
        """An id of ``back_ms`` before now (0: now; then unique per tick)."""
        if back_ms:
            return str(((self.ms - back_ms - _TWEPOCH_MS) << 22) | self._rng.randrange(1 << 22))
        return str(((self.ms - _TWEPOCH_MS) << 22) | self._worker | self._seq)

    def old_snowflake(self) -> str:
        """The id of something created up to a year before now."""
        return self.snowflake(self._rng.randrange(1000, 365 * 86_400_000))


def _user_id(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return str(rng.randrange(10_000_000, 4_000_000_000))
    return str(rng.randrange(700_000_000_000_000_000, 1_800_000_000_000_000_000))


_COUNTRIES = ("DE", "FR", "IN", "TR", "RU", "BR", "KR", "JP", "GB", "AT")
_TWEET_COMPLIANCE = (("delete", 60), ("tweet_edit", 15), ("drop", 10), ("undrop", 7))
_USER_COMPLIANCE = (
    ("user_delete", 20),
    ("user_undelete", 6),
    ("user_protect", 14),
    ("user_unprotect", 10),
    ("user_suspend", 12),
    ("user_unsuspend", 5),
    ("user_withheld", 4),
    ("scrub_geo", 9),
    ("user_profile_modification", 20),
)
_PROFILE_FIELDS = (
    ("name", ("Ana Silva", "Kenji Tanaka ✨", "Sara 💙")),
    ("screen_name", ("ana_silva", "kenji_t", "sara_s")),
    ("description", ("Coffee, code and cats.", "音楽とアニメが好き", "")),
    ("location", ("London", "東京", "São Paulo")),
    ("url", ("https://t.co/AbCdEf1234", "")),
    ("profile_image_url", ("https://pbs.twimg.com/profile_images/1/a_normal.jpg",)),
)


def generate_compliance_messages(
    kind: Literal["tweets", "users", "likes"], *, seed: int = 0
) -> Iterator[dict[str, Any]]:
    """Yield compliance stream messages forever, deterministically per ``seed``.

    ``kind`` picks the stream:

    * ``"tweets"`` (``/2/tweets/compliance/stream``): ``delete`` (``tweet{id, author_id}``,
      ``event_at``, sometimes ``quote_tweet_id``), ``tweet_edit`` (``initial_tweet_id``,
      ``edit_tweet_ids``), ``withheld`` (``withheld_in_countries``), ``drop``, ``undrop``;
    * ``"users"`` (``/2/users/compliance/stream``): ``user_delete``, ``user_undelete``,
      ``user_protect``, ``user_unprotect``, ``user_suspend``, ``user_unsuspend`` (each
      ``user{id}``, ``event_at``), ``user_withheld`` (``withheld_in_countries``),
      ``scrub_geo`` (``up_to_tweet_id``), ``user_profile_modification``
      (``profile_field``, ``new_value``);
    * ``"likes"`` (``/2/likes/compliance/stream``): ``delete`` with ``favorite{id, user_id}``.

    Every message is ``{"data": {<event kind>: {...}}}``; ids are strings of digits;
    ``event_at`` moves forward (``YYYY-MM-DDTHH:mm:ss.sssZ``).
    """
    if kind not in ("tweets", "users", "likes"):
        raise ValueError(f"kind must be 'tweets', 'users' or 'likes', not {kind!r}")
    rng = random.Random(f"compliance-{kind}-{seed}")
    clock = _Timeline(rng, seed)
    tweet_kinds = [k for k, _ in _TWEET_COMPLIANCE] + ["withheld"]
    tweet_weights = [w for _, w in _TWEET_COMPLIANCE] + [8]
    user_kinds = [k for k, _ in _USER_COMPLIANCE]
    user_weights = [w for _, w in _USER_COMPLIANCE]
    while True:
        clock.tick()
        event_at = _stamp(clock.ms)
        event: dict[str, Any]
        if kind == "likes":
            favorite = {"id": clock.old_snowflake(), "user_id": _user_id(rng)}
            yield {"data": {"delete": {"favorite": favorite, "event_at": event_at}}}
            continue
        if kind == "tweets":
            name = rng.choices(tweet_kinds, tweet_weights)[0]
            tweet = {"id": clock.old_snowflake(), "author_id": _user_id(rng)}
            event = {"tweet": tweet, "event_at": event_at}
            if name == "delete" and rng.random() < 0.1:
                event["quote_tweet_id"] = clock.old_snowflake()
            elif name == "tweet_edit":
                # Edits come within the hour of the first version, each a new id.
                edits = [int(tweet["id"])]
                for _ in range(rng.randrange(1, 4)):
                    edits.append(edits[-1] + (rng.randrange(1_000, 1_200_000) << 22))
                tweet["id"] = str(edits[-1])
                event["initial_tweet_id"] = str(edits[0])
                event["edit_tweet_ids"] = [str(e) for e in edits]
            elif name == "withheld":
                event["withheld_in_countries"] = sorted(rng.sample(_COUNTRIES, rng.randrange(1, 4)))
            yield {"data": {name: event}}
            continue
        name = rng.choices(user_kinds, user_weights)[0]
        event = {"user": {"id": _user_id(rng)}, "event_at": event_at}
        if name == "user_withheld":
            event["withheld_in_countries"] = sorted(rng.sample(_COUNTRIES, rng.randrange(1, 4)))
        elif name == "scrub_geo":
            event["up_to_tweet_id"] = clock.old_snowflake()
        elif name == "user_profile_modification":
            field, values = _PROFILE_FIELDS[rng.randrange(len(_PROFILE_FIELDS))]
            event["profile_field"] = field
            event["new_value"] = values[rng.randrange(len(values))]
        yield {"data": {name: event}}


def generate_like_messages(*, seed: int = 0, expansions: bool = True) -> Iterator[dict[str, Any]]:
    """Yield likes stream messages (``/2/likes/firehose/stream``, ``sample10``) forever.

    Each is ``{"data": {"id", "created_at", "liked_tweet_id", "timestamp_ms",
    "tweet_author_id"}, "includes"?: {"users": [...], "tweets": [...]}}`` (OpenAPI
    ``LikeWithTweetAuthor``). ``id`` is the like's own id, 32 hexadecimal digits (not a
    number); ``timestamp_ms`` is a STRING of epoch milliseconds, as X's documented example
    sends it, although the OpenAPI types it as an integer. With ``expansions`` the liked
    Tweet and its author come in ``includes``. Deterministic per ``seed``.
    """
    rng = random.Random(f"likes-{seed}")
    clock = _Timeline(rng, seed)
    users = _make_users(rng, 200)
    while True:
        clock.tick()
        author = users[rng.randrange(len(users))]
        liked = clock.old_snowflake()
        data = {
            "id": f"{rng.getrandbits(128):032x}",
            "created_at": _stamp(clock.ms),
            "liked_tweet_id": liked,
            "timestamp_ms": str(clock.ms),
            "tweet_author_id": author["id"],
        }
        message: dict[str, Any] = {"data": data}
        if expansions:
            lang, sentences, _ = _CORPUS[rng.randrange(len(_CORPUS))]
            tweet = {
                "id": liked,
                "text": sentences[rng.randrange(len(sentences))],
                "edit_history_tweet_ids": [liked],
                "author_id": author["id"],
                "lang": lang,
            }
            message["includes"] = {"users": [author.copy()], "tweets": [tweet]}
        yield message


_LABEL_TITLES = (
    ("misleading", "Misleading", "This Post may be misleading.", "https://t.co/misleading"),
    ("sensitive_media", "Sensitive media", "This Post may include sensitive content.", None),
    ("synthetic_media", "Manipulated media", "This media may have been manipulated.", None),
)


def generate_label_messages(*, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield label stream messages (``/2/tweets/label/stream``) forever, per ``seed``.

    Mostly ``{"data": {"public_tweet_notice": {"tweet": {"id", "author_id"}, "event_type",
    "event_at", "application": "apply"|"remove", "label_title"?, "details"?,
    "extended_details_url"?}}}``; about one in five is ``public_tweet_unviewable``
    (``tweet``, ``event_at``, ``application``).
    """
    rng = random.Random(f"labels-{seed}")
    clock = _Timeline(rng, seed)
    while True:
        clock.tick()
        tweet = {"id": clock.old_snowflake(), "author_id": _user_id(rng)}
        application = "apply" if rng.random() < 0.85 else "remove"
        if rng.random() < 0.2:
            event = {"tweet": tweet, "event_at": _stamp(clock.ms), "application": application}
            yield {"data": {"public_tweet_unviewable": event}}
            continue
        event_type, title, details, url = _LABEL_TITLES[rng.randrange(len(_LABEL_TITLES))]
        notice: dict[str, Any] = {
            "tweet": tweet,
            "event_type": event_type,
            "event_at": _stamp(clock.ms),
            "application": application,
        }
        if rng.random() < 0.8:
            notice["label_title"] = title
            notice["details"] = details
            if url is not None:
                notice["extended_details_url"] = url
        yield {"data": {"public_tweet_notice": notice}}


_ACTIVITY_TYPES = (
    "profile.update.bio",
    "profile.update.profile_picture",
    "follow.follow",
    "follow.unfollow",
    "post.create",
    "post.delete",
    "like.create",
    "news.new",
)
_HEADLINES = ("Rain expected across the region", "Local team wins the final", "新しい駅が開業")


def generate_activity_messages(*, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield activity stream messages (``/2/activity/stream``) forever, per ``seed``.

    Each is ``{"data": {"event_uuid", "event_type", "filter": {"user_id"} | {"keyword"},
    "tag"?, "payload"}}``: ``payload`` is ``{"before", "after"}`` for ``profile.update.*``,
    ``{"source", "target"}`` (users) for ``follow.*``, a Tweet for ``post.create``,
    ``{"id", "author_id"}`` for ``post.delete``, a like for ``like.create``, and
    ``{"headline", "summary", "url"}`` for ``news.new`` (filtered by ``keyword``).
    """
    rng = random.Random(f"activity-{seed}")
    clock = _Timeline(rng, seed)
    users = _make_users(rng, 50)
    while True:
        clock.tick()
        event_type = _ACTIVITY_TYPES[rng.randrange(len(_ACTIVITY_TYPES))]
        user = users[rng.randrange(len(users))]
        other = users[rng.randrange(len(users))]
        filter_: dict[str, Any] = {"user_id": user["id"]}
        payload: dict[str, Any]
        if event_type.startswith("profile.update."):
            before = rng.randrange(len(_BIOS))
            after = (before + rng.randrange(1, len(_BIOS))) % len(_BIOS)
            payload = {"before": _BIOS[before], "after": _BIOS[after]}
        elif event_type.startswith("follow."):
            payload = {"source": other.copy(), "target": user.copy()}
            filter_["direction"] = "inbound"
        elif event_type == "post.create":
            tweet_id = clock.snowflake()
            lang, sentences, _ = _CORPUS[rng.randrange(len(_CORPUS))]
            payload = {
                "id": tweet_id,
                "text": sentences[rng.randrange(len(sentences))],
                "edit_history_tweet_ids": [tweet_id],
                "author_id": user["id"],
                "created_at": _stamp(clock.ms - clock.ms % 1000),
                "lang": lang,
            }
        elif event_type == "post.delete":
            payload = {"id": clock.old_snowflake(), "author_id": user["id"]}
        elif event_type == "like.create":
            payload = {
                "id": f"{rng.getrandbits(128):032x}",
                "created_at": _stamp(clock.ms),
                "liked_tweet_id": clock.old_snowflake(),
                "timestamp_ms": str(clock.ms),
                "tweet_author_id": user["id"],
            }
        else:
            headline = _HEADLINES[rng.randrange(len(_HEADLINES))]
            filter_ = {"keyword": headline.split()[0].casefold()}
            payload = {
                "headline": headline,
                "summary": f"{headline}.",
                "url": f"https://x.com/i/trending/{rng.randrange(10**18, 2 * 10**18)}",
            }
        data: dict[str, Any] = {
            "event_uuid": str(rng.randrange(10**18, 10**19)),
            "event_type": event_type,
            "filter": filter_,
        }
        if rng.random() < 0.6:
            data["tag"] = event_type.split(".")[0] + " watch"
        data["payload"] = payload
        yield {"data": data}
