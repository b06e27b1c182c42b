"""API v1.1 request parameters: tweepy's ``Stream.filter``/``Stream.sample`` arguments
-> the form body or query, checked before anything connects, with X's limits."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "FILTER_LEVELS",
    "MAX_BOXES",
    "MAX_FOLLOW",
    "MAX_PHRASE_BYTES",
    "MAX_TRACK",
    "filter_params",
    "sample_params",
]

#: ``statuses/filter`` limits (X's documented defaults for standard access).
MAX_TRACK = 400
MAX_FOLLOW = 5000
MAX_BOXES = 25
MAX_PHRASE_BYTES = 60
FILTER_LEVELS = ("none", "low", "medium")


def _listed(name: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a list, not a string: use {name}=[{value!r}]")
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list, not {type(value).__name__}")
    return list(value)


def _phrases(name: str, value: Any, *, max_bytes: int | None = None) -> list[str]:
    items = _listed(name, value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name}: {item!r} is not a string")
        if not item.strip():
            raise ValueError(f"{name}: empty or blank item {item!r}")
        if "," in item:
            raise ValueError(
                f"{name}: {item!r} contains a comma, which separates items on the wire; "
                "pass each item separately"
            )
        if max_bytes is not None and len(item.encode("utf-8")) > max_bytes:
            raise ValueError(
                f"{name}: {item!r} is {len(item.encode('utf-8'))} bytes of UTF-8; "
                f"X accepts 1 to {max_bytes}"
            )
    return items


def _follow_ids(value: Any) -> list[str]:
    ids: list[str] = []
    for item in _listed("follow", value):
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise TypeError(f"follow: {item!r} is not a user id (an int or a string of digits)")
        text = str(item)
        if not (text.isascii() and text.isdigit()) or int(text) == 0:
            raise ValueError(
                f"follow: {item!r} is not a user id (a positive integer; "
                "screen names are not accepted)"
            )
        ids.append(text)
    if len(ids) > MAX_FOLLOW:
        raise ValueError(f"follow: {len(ids)} user ids; X accepts at most {MAX_FOLLOW}")
    return ids


def _locations(value: Any) -> list[str]:
    numbers = _listed("locations", value)
    for x in numbers:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise TypeError(f"locations: {x!r} is not a number")
        if not math.isfinite(x):
            raise ValueError(f"locations: {x!r} is not a finite number")
    if len(numbers) % 4:
        raise ValueError(
            f"locations: {len(numbers)} numbers; need 4 per bounding box "
            "(south-west longitude, latitude, then north-east longitude, latitude)"
        )
    boxes = len(numbers) // 4
    if boxes > MAX_BOXES:
        raise ValueError(f"locations: {boxes} bounding boxes; X accepts at most {MAX_BOXES}")
    for i in range(boxes):
        sw_lon, sw_lat, ne_lon, ne_lat = numbers[4 * i : 4 * i + 4]
        where = f"locations box {i + 1} {[sw_lon, sw_lat, ne_lon, ne_lat]}"
        if not (-180 <= sw_lon <= 180 and -180 <= ne_lon <= 180):
            raise ValueError(f"{where}: longitudes must be within [-180, 180]")
        if not (-90 <= sw_lat <= 90 and -90 <= ne_lat <= 90):
            raise ValueError(f"{where}: latitudes must be within [-90, 90]")
        if not (sw_lon < ne_lon and sw_lat < ne_lat):
            raise ValueError(
                f"{where}: give the south-west corner first (its longitude and latitude "
                "must be below the north-east corner's)"
            )
    return [f"{x:.4f}" for x in numbers]


def _common(params: dict[str, str], languages: Any, stall_warnings: bool, delimited: Any) -> None:
    langs = _phrases("languages", languages)
    if langs:
        params["language"] = ",".join(langs)
    if stall_warnings:
        params["stall_warnings"] = "true"
    if delimited is not None:
        if delimited != "length":
            raise ValueError(f"delimited must be 'length' or None, not {delimited!r}")
        params["delimited"] = "length"


def filter_params(
    *,
    follow: Iterable[int | str] | None = None,
    track: Iterable[str] | None = None,
    locations: Iterable[float] | None = None,
    filter_level: str | None = None,
    languages: Iterable[str] | None = None,
    stall_warnings: bool = False,
    delimited: str | None = None,
) -> dict[str, str]:
    """tweepy's ``Stream.filter`` arguments -> the ``statuses/filter`` form body, checked.

    As tweepy: ``follow`` ids and ``track`` phrases joined by commas, ``locations`` as
    ``%.4f`` numbers joined by commas, ``language`` from ``languages``,
    ``stall_warnings=true``; plus ``delimited=length`` when asked. Raises ``ValueError``
    (or ``TypeError`` for a wrong type) before anything connects: none of
    follow/track/locations; a track phrase that is blank, over 60 bytes of UTF-8 or holds a
    comma; more than 400 phrases, 5,000 ids or 25 boxes; an id that is not a positive
    integer (or a string of digits); locations not 4 numbers per box, out of range, or
    north-east before south-west; ``filter_level`` not ``none``/``low``/``medium``. A plain
    string where a list is expected is a ``TypeError`` (tweepy would split it into
    characters).
    """
    ids = _follow_ids(follow)
    phrases = _phrases("track", track, max_bytes=MAX_PHRASE_BYTES)
    if len(phrases) > MAX_TRACK:
        raise ValueError(f"track: {len(phrases)} phrases; X accepts at most {MAX_TRACK}")
    boxes = _locations(locations)
    if not (ids or phrases or boxes):
        raise ValueError("filter() needs at least one of follow, track or locations")
    params: dict[str, str] = {}
    if ids:
        params["follow"] = ",".join(ids)
    if phrases:
        params["track"] = ",".join(phrases)
    if boxes:
        params["locations"] = ",".join(boxes)
    if filter_level is not None:
        if filter_level not in FILTER_LEVELS:
            raise ValueError(
                f"filter_level must be one of {', '.join(FILTER_LEVELS)}, not {filter_level!r}"
            )
        params["filter_level"] = filter_level
    _common(params, languages, stall_warnings, delimited)
    return params


def sample_params(
    *,
    languages: Iterable[str] | None = None,
    stall_warnings: bool = False,
    delimited: str | None = None,
) -> dict[str, str]:
    """tweepy's ``Stream.sample`` arguments -> the ``statuses/sample`` query, checked."""
    params: dict[str, str] = {}
    _common(params, languages, stall_warnings, delimited)
    return params
