"""The lazy-model machinery both API versions build on (private).

A :class:`Model` is a read-only, lazily converting view of one API object (``model.data``):
a :class:`Field` converts ``data[name]`` each time it is read, nothing is converted when the
model is built. :mod:`rxtweet.v2.models` (tweepy's classes) and :mod:`rxtweet.v1.models`
(v1.1 statuses and notices) both derive from here; the full contract (mapping behaviour,
unknown keys, identity) is in :mod:`rxtweet.v2.models`.

:class:`ValueEquality` is for models without an id (a bounding box, a v1.1 notice): equal
when of the same type with equal ``data``, and unhashable (``data`` is a mutable dict).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar, overload

__all__ = ["Field", "Model", "ValueEquality", "short"]

log = logging.getLogger(__name__)

# The API's timestamps look like "2021-04-01T15:52:31.000Z". Python >= 3.11 parses the "Z",
# giving a tz-aware UTC datetime equal to tweepy's strptime("%Y-%m-%dT%H:%M:%S.%f%z") result,
# ~50x faster (0.14 us vs 7 us).
_fromisoformat = datetime.fromisoformat


def short(text: Any, limit: int = 40) -> str:
    """``repr(text)``, cut to ``limit`` characters plus "…" (for a model's repr)."""
    if isinstance(text, str) and len(text) > limit:
        return repr(text[:limit] + "…")
    return repr(text)


_V = TypeVar("_V")


class Field(Generic[_V]):
    """One model attribute: ``data[name]``, converted on read.

    ``Field[int | None](int)`` reads ``data["author_id"]`` (the attribute's own name) and
    returns ``int(value)``, or ``None`` when the key is absent or null. With
    ``required=True`` an absent key raises ``AttributeError`` (so ``hasattr`` works, and
    ``model["id"]`` raises ``KeyError``). ``default`` is called for the value of an absent
    optional key (tweepy gives ``[]`` for some lists). Nothing is cached: most fields are read
    once if at all, and re-converting a scalar is cheaper than a cache.
    """

    __slots__ = ("convert", "default", "name", "required")

    def __init__(
        self,
        convert: Callable[[Any], Any] | None = None,
        *,
        required: bool = False,
        default: Callable[[], Any] | None = None,
    ) -> None:
        self.convert = convert
        self.required = required
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Field[_V]: ...

    @overload
    def __get__(self, obj: Model, owner: type | None = None) -> _V: ...

    def __get__(self, obj: Model | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.data.get(self.name)
        if value is None:
            if self.required:
                raise AttributeError(self.name)
            return None if self.default is None else self.default()
        convert = self.convert
        return value if convert is None else convert(value)


class Model(Mapping[str, Any]):
    """Common base: a read-only, lazily converting view of one API object (``data``)."""

    __slots__ = ("data",)

    #: Names of the modelled fields, filled in by ``__init_subclass__``.
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
            if isinstance(value, property | Field)
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

    # -- pickling ---------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # The slots that are set, through the class hierarchy: pickle protocols 0 and 1
        # refuse a class with __slots__ that does not say what its state is.
        return {
            name: getattr(self, name)
            for klass in type(self).__mro__
            for name in vars(klass).get("__slots__", ())
            if hasattr(self, name)
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    # -- identity: tweepy's HashableID ----------------------------------------------------

    def _key(self) -> Any:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, self.__class__):
            return bool(self._key() == other._key())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())


class ValueEquality:
    """Mixin (first among the bases): equal to an object of exactly the same type with equal
    ``data``; unhashable, since ``data`` is a mutable dict.

    >>> class Box(ValueEquality, Model):
    ...     __slots__ = ()
    >>> Box({"a": 1}) == Box({"a": 1}), Box({"a": 1}) == Box({"a": 2})
    (True, False)
    """

    __slots__ = ()

    data: dict[str, Any]

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return bool(self.data == other.data)
        return NotImplemented

    # Equal by mutable data: a hash could change while the object sits in a set.
    __hash__ = None  # type: ignore[assignment]


#: The old private names, kept for the modules (and tests) that still use them.
_Model = Model
_short = short
