"""What any log engine adapter needs, engine-neutral: message ids, subjects, kinds, parsing.

The JetStream adapter (:mod:`rxtweet.nats.jetstream`) is built on these; a Redis Streams or
Kafka adapter would use the same pieces:

* :func:`message_id_for` - a stream message -> the id the log de-duplicates by (NATS's
  ``Nats-Msg-Id`` header, a Kafka idempotence key ...): the message's identity
  (:func:`rxtweet.v2.identity.identity_for`) as a string;
* :func:`endpoint_of` - which endpoint (and so which kind of message) a stream object reads,
  and its partitions;
* :func:`subject_for` - the subject (topic) a stream's messages go to;
* :func:`parser_for` - a stored line -> ``Parsed(model, raw)`` with the same models as a live
  stream of that kind, so the same operator chains run on a worker as on the ingester.

Nothing here does I/O or imports an engine's client.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ..events import MalformedMessage
from ..parse import Parsed, decode
from ..v2.endpoints import ENDPOINTS, Endpoint
from ..v2.identity import identity_for

__all__ = [
    "DEFAULT_SUBJECT",
    "KINDS",
    "KIND_HEADER",
    "MessageId",
    "StreamSource",
    "endpoint_of",
    "message_id_for",
    "parser_for",
    "subject_for",
]

log = logging.getLogger(__name__)

#: The default subject template: ``x.sample.0``, ``x.firehose.3``, ``x.firehose.1-20``.
DEFAULT_SUBJECT: Final = "x.{stream}.{partition}"

#: The header naming the kind of a stored message (``tweets``, ``compliance`` ...), so a
#: worker parses it with the right models whatever subject it came on.
KIND_HEADER: Final = "Rxtweet-Kind"

#: The message kinds (:data:`rxtweet.v2.endpoints.EndpointKind`).
KINDS: Final = ("tweets", "compliance", "likes", "labels", "activity")

#: A stream message (a model) -> its de-duplication id, or ``None`` when it has none.
MessageId = Callable[[Any], str | None]


def message_id_for(kind: str) -> MessageId:
    """The de-duplication id of the messages of ``kind``, as a string.

    A tweet's or a like's id, an activity's ``event_uuid`` are used as they are (the
    header then says which tweet it was); the tuple keys of compliance and label events
    become ``"k:"`` and a 128-bit BLAKE2b digest of their ``repr`` (stable across processes
    and Python versions: it holds only strings, ints and ``None``). A message without an
    identity (a system message such as an ``operational-disconnect``) gets ``None``.

    >>> from rxtweet.v2.convert import to_stream_response
    >>> message_id_for("tweets")(to_stream_response({"data": {"id": "20", "text": "hi"}}))
    '20'
    >>> key = message_id_for("compliance")
    >>> key(object()) is None
    True
    """
    identity = identity_for(kind)

    def message_id(message: Any) -> str | None:
        key = identity(message)
        if key is None:
            return None
        if type(key) is str:
            return key
        if type(key) is int:
            return str(key)
        digest = hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()
        return f"k:{digest}"

    return message_id


@dataclass(frozen=True, slots=True)
class StreamSource:
    """Which endpoint a stream object reads: ``endpoint`` (its :class:`Endpoint`, ``None``
    when the path is not one of X's v2 streams), ``kind`` and ``partitions`` (empty for
    an unpartitioned endpoint)."""

    endpoint: Endpoint | None
    kind: str
    partitions: tuple[int, ...]

    @property
    def name(self) -> str:
        """The endpoint's name (``"firehose"``), ``"stream"`` when unknown."""
        return self.endpoint.name if self.endpoint is not None else "stream"

    @property
    def partition_token(self) -> str:
        """The ``{partition}`` of a subject: the one partition's number, ``"1-20"`` for a
        contiguous range, ``"1_3_5"`` otherwise, ``"0"`` for an unpartitioned endpoint (a
        subject token may not contain ``.``, ``*``, ``>`` or a space)."""
        numbers = self.partitions
        if not numbers:
            return "0"
        if len(numbers) == 1:
            return str(numbers[0])
        if list(numbers) == list(range(numbers[0], numbers[-1] + 1)):
            return f"{numbers[0]}-{numbers[-1]}"
        return "_".join(str(n) for n in numbers)


def endpoint_of(stream: Any, kind: str | None = None) -> StreamSource:
    """The endpoint, kind and partitions of a stream object (a
    :class:`~rxtweet.substreams.Substreams`), from its request's path.

    ``kind`` overrides the kind (needed only for a stream whose path is not one of X's).

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    connection = getattr(stream, "connection", stream)
    request = getattr(connection, "request", None)
    url = getattr(request, "url", "") or ""
    path = url.split("?", 1)[0]
    found: Endpoint | None = None
    for endpoint in ENDPOINTS.values():
        if path.endswith(endpoint.path) and (found is None or len(endpoint.path) > len(found.path)):
            found = endpoint
    partitions: tuple[int, ...] = tuple(getattr(connection, "partitions", ()) or ())
    if not partitions and found is not None and found.partitioned:
        params = getattr(request, "params", None) or {}
        number = params.get("partition") if hasattr(params, "get") else None
        if number is not None and str(number).isdigit():
            partitions = (int(number),)
    resolved = kind or (found.kind if found is not None else "tweets")
    return StreamSource(found, resolved, partitions)


def subject_for(template: str, source: StreamSource) -> str:
    """``template`` with ``{stream}`` (the endpoint's name) and ``{partition}``
    (:attr:`StreamSource.partition_token`) filled in.

    >>> subject_for("x.{stream}.{partition}", StreamSource(ENDPOINTS["firehose"], "tweets", (3,)))
    'x.firehose.3'

    Raises:
        ValueError: the template names another field, or the subject would be invalid.
    """
    try:
        subject = template.format(stream=source.name, partition=source.partition_token)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"subject template {template!r}: only {{stream}} and {{partition}} are known"
        ) from exc
    if not subject or any(c in subject for c in " \t\r\n*>") or ".." in subject:
        raise ValueError(f"not a valid subject: {subject!r}")
    return subject


def _converter(kind: str) -> Callable[[dict[str, Any]], Any]:
    # Imported here: each stream module pulls in its models; a worker needs one kind.
    if kind == "compliance":
        from ..v2.compliance import to_compliance_response

        return to_compliance_response
    if kind == "likes":
        from ..v2.likes import to_like_response

        return to_like_response
    if kind == "labels":
        from ..v2.labels import to_label_response

        return to_label_response
    if kind == "activity":
        from ..v2.activity import to_activity_response

        return to_activity_response
    from ..v2.convert import to_stream_response

    return to_stream_response


def parser_for(kind: str) -> Callable[[bytes], Parsed[Any] | MalformedMessage]:
    """A stored line -> ``Parsed(model, raw)``, the model being what a live stream of
    ``kind`` emits (``StreamResponse`` for tweets, ``ComplianceResponse`` ...), or a
    :class:`~rxtweet.events.MalformedMessage` for a line that is not such a message. Never
    raises because of its input.

    >>> parse = parser_for("tweets")
    >>> parse(b'{"data": {"id": "20", "text": "hi"}}').value.data.id
    20
    >>> type(parse(b"not json")).__name__
    'MalformedMessage'

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS` (now, not per line).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    convert = _converter(kind)

    def parse(raw: bytes) -> Parsed[Any] | MalformedMessage:
        doc = decode(raw)
        if type(doc) is MalformedMessage:
            return doc
        try:
            return Parsed(convert(doc), raw)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - a converter's failure is a malformed line
            log.debug("a stored %s message could not be converted: %r", kind, exc)
            return MalformedMessage(raw, "unexpected message shape")

    return parse
