"""Sending jobs: the :class:`~sigforge.services.ports.JobQueue` the web and CLI hand to services."""

from __future__ import annotations

import dramatiq

from sigforge.logging import get_logger
from sigforge.worker.broker import TRANSLATIONS_QUEUE, ping_broker

log = get_logger(__name__)

RUN_TRANSLATION = "run_translation"


class JobDispatcher:
    """Puts job messages on the broker; the web and CLI processes need no actor code to do it."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        broker.declare_queue(TRANSLATIONS_QUEUE)

    def send_translation(self, translation_id: str) -> str:
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=TRANSLATIONS_QUEUE,
            actor_name=RUN_TRANSLATION,
            args=(translation_id,),
            kwargs={},
            options={},
        )
        self.broker.enqueue(message)
        log.info("job.enqueued", translation_id=translation_id, message_id=message.message_id)
        return str(message.message_id)

    def ping(self) -> None:
        ping_broker(self.broker)
