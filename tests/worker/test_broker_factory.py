"""The broker named by the settings: embedded SQLite by default, Redis and RabbitMQ by URL, a clear error otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from realservices import RABBITMQ_URL, REDIS_URL, require_service
from sigforge.errors import InvalidSettings
from sigforge.settings import load_settings
from sigforge.worker.broker import make_broker, ping_broker
from sigforge.worker.brokers.sqlite import SQLiteBroker


def test_default_is_the_embedded_broker_in_the_data_dir(tmp_path: Path) -> None:
    broker = make_broker(load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path)}))
    try:
        assert isinstance(broker, SQLiteBroker)
        ping_broker(broker)
        assert (tmp_path / "queue.sqlite3").is_file()
    finally:
        broker.close()


@pytest.mark.parametrize(
    ("url", "needle"),
    [("kafka://somewhere", "expected sqlite:///path"), ("sqlite://", "needs a file path")],
)
def test_bad_broker_url_is_one_readable_error(url: str, needle: str) -> None:
    with pytest.raises(InvalidSettings, match=needle):
        make_broker(load_settings(env={"SIGFORGE_BROKER_URL": url}))


@pytest.mark.parametrize(("service", "url"), [("redis", REDIS_URL), ("rabbitmq", RABBITMQ_URL)])
def test_server_brokers_by_url(service: str, url: str) -> None:
    require_service(service)
    broker = make_broker(load_settings(env={"SIGFORGE_BROKER_URL": url}))
    try:
        assert type(broker).__name__ == {"redis": "RedisBroker", "rabbitmq": "RabbitmqBroker"}[service]
        ping_broker(broker)
    finally:
        broker.close()
