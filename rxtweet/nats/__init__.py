"""Scale out on NATS JetStream: ingest a stream once, process it on many machines.

Two functions (``pip install rxtweet[nats]``; see ``docs/scaling-out.md``)::

    from rxtweet.nats import publish, consume

    # the ingester: each message once into the JetStream stream RXTWEET
    publisher = publish("nats://127.0.0.1:4222")
    publisher.publish(client.sample_stream(redundancy=2)).run()

    # any number of workers, on any machine: each message to one of them
    consume("nats://127.0.0.1:4222", durable="workers").pipe(
        ops.map(lambda parsed: parsed.value)
    ).subscribe(handle)

:func:`publish` makes a :class:`~rxtweet.nats.jetstream.JetStreamPublisher`; :func:`consume`
returns a cold ``Observable[Parsed]`` (a :class:`~rxtweet.nats.jetstream.Consumption`).
The engine-specific code is :mod:`rxtweet.nats.jetstream`; the engine-neutral pieces (ids,
subjects, parsing) are :mod:`rxtweet.nats.messages`. Importing this package does not import
nats-py; using it without nats-py raises ``ImportError`` naming ``pip install rxtweet[nats]``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .jetstream import (
    DEFAULT_ACK_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_MAX_PENDING,
    DEFAULT_STREAM_NAME,
    ConsumeStats,
    Consumption,
    JetStreamPublisher,
    PublishError,
    PublishStats,
    consume,
    require_nats,
)
from .messages import DEFAULT_SUBJECT

__all__ = [
    "ConsumeStats",
    "Consumption",
    "JetStreamPublisher",
    "PublishError",
    "PublishStats",
    "consume",
    "publish",
]


def publish(
    servers: str | Sequence[str],
    *,
    subject: str = DEFAULT_SUBJECT,
    stream_name: str = DEFAULT_STREAM_NAME,
    create_stream: bool = True,
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    max_pending: int = DEFAULT_MAX_PENDING,
    ack_timeout: float = DEFAULT_ACK_TIMEOUT,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    replicas: int = 1,
    kind: str | None = None,
    connect_timeout: float = 5.0,
) -> JetStreamPublisher:
    """A publisher of stream messages to the JetStream stream ``stream_name``.

    ``publisher.publish(stream)`` is the stream's items with each message (its raw line,
    unchanged) published on the way, ``Nats-Msg-Id`` = its identity (the tweet's id ...);
    ``.run()`` it, or subscribe to it, to ingest. See
    :class:`~rxtweet.nats.jetstream.JetStreamPublisher` for threads, back-pressure,
    completion and disposal.

    Args:
        servers: NATS URLs (a list, or one string, comma-separated for several).
        subject: the subject template: ``{stream}`` is the endpoint's name (``sample``,
            ``firehose`` ...), ``{partition}`` its partition(s) (``3``, ``1-20``; ``0`` for an
            unpartitioned endpoint).
        stream_name: the JetStream stream.
        create_stream: create it if missing (file storage, ``replicas``, the template with
            ``*`` for each field as its subjects, ``duplicate_window``).
        duplicate_window: seconds within which the server drops a message whose id it has
            stored (default 6 minutes: X's 5-minute backfill and the reconnect).
        max_pending: un-acked publishes at most (as many more may wait to be sent); the
            reader blocks beyond.
        ack_timeout: seconds without an ack before a message is sent again (same id).
        close_timeout: how long disposal waits for outstanding acks.
        replicas: the stream's replicas when created (3 on a 3-node cluster).
        kind: the message kind when the stream's path is not one of X's.
        connect_timeout: seconds to reach a server at the start (then ``ConnectionError``);
            a connection lost later is retried forever.

    Raises:
        ValueError: a bad argument (now, not when subscribed).
        ImportError: nats-py is missing (``pip install rxtweet[nats]``).
    """
    require_nats()
    return JetStreamPublisher(
        servers,
        subject=subject,
        stream_name=stream_name,
        create_stream=create_stream,
        duplicate_window=duplicate_window,
        max_pending=max_pending,
        ack_timeout=ack_timeout,
        close_timeout=close_timeout,
        replicas=replicas,
        kind=kind,
        connect_timeout=connect_timeout,
    )
