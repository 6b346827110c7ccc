"""Build the Dramatiq broker that the settings name.

- ``sqlite:///path`` (the default, embedded: no server) → :class:`SQLiteBroker`;
- ``redis://`` / ``rediss://`` → Dramatiq's RedisBroker;
- ``amqp://`` / ``amqps://`` → Dramatiq's RabbitmqBroker.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import dramatiq
from dramatiq.middleware import CurrentMessage

from sigforge.errors import InvalidSettings, ServiceUnavailable
from sigforge.settings import Settings
from sigforge.worker.brokers.sqlite import SQLiteBroker

TRANSLATIONS_QUEUE = "translations"


def broker_kind(url: str) -> str:
    scheme = urlsplit(url).scheme
    kinds = {"sqlite": "sqlite", "redis": "redis", "rediss": "redis", "amqp": "rabbitmq", "amqps": "rabbitmq"}
    if scheme not in kinds:
        raise InvalidSettings(
            f"settings: broker.url: expected sqlite:///path, redis://… or amqp://…, got {url!r}",
            pointer="broker.url",
        )
    return kinds[scheme]


def make_broker(settings: Settings) -> dramatiq.Broker:
    """A broker for ``settings.broker_url`` with the middleware sigforge's actors rely on."""
    url = settings.broker_url
    kind = broker_kind(url)
    broker: dramatiq.Broker
    if kind == "sqlite":
        path = urlsplit(url).path
        if not path or path == "/":
            raise InvalidSettings("settings: broker.url: a sqlite broker URL needs a file path", pointer="broker.url")
        broker = SQLiteBroker(
            path,
            heartbeat_interval_s=settings.broker.heartbeat_interval_s,
            heartbeat_ttl_s=settings.broker.heartbeat_ttl_s,
            poll_interval_s=settings.broker.poll_interval_s,
        )
    elif kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url, heartbeat_timeout=int(settings.broker.heartbeat_ttl_s * 1000))  # type: ignore[no-untyped-call]
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    broker.add_middleware(CurrentMessage())
    return broker


def ping_broker(broker: dramatiq.Broker) -> None:
    """Raise ServiceUnavailable unless the broker answers."""
    try:
        if isinstance(broker, SQLiteBroker):
            broker.ping()
        elif hasattr(broker, "client"):  # redis
            broker.client.ping()
        else:  # rabbitmq: opening a channel proves the connection
            getattr(broker, "channel")  # noqa: B009
    except Exception as exc:
        raise ServiceUnavailable(f"broker unreachable: {exc}") from exc
