"""Actors: thin. An id comes in, a scope opens, a service does the work.

``WorkerRuntime`` holds what every actor needs in one worker process. The database engine is created lazily,
per process, because Dramatiq forks its worker processes and a pooled connection must never cross a fork.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from sigforge.db.session import Database
from sigforge.logging import bound
from sigforge.services.context import Actor
from sigforge.services.jobs import BuildEnvironment, TranslationJob
from sigforge.settings import Settings
from sigforge.worker.broker import TRANSLATIONS_QUEUE
from sigforge.worker.dispatch import RUN_TRANSLATION


class WorkerRuntime:
    """Per-process resources for actors."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pid: int | None = None
        self._db: Database | None = None
        self._env: BuildEnvironment | None = None

    @property
    def db(self) -> Database:
        if self._db is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._db = Database.from_url(
                self.settings.database_url, busy_timeout_ms=self.settings.database.busy_timeout_ms
            )
        return self._db

    @property
    def env(self) -> BuildEnvironment:
        if self._env is None:
            self._env = BuildEnvironment.from_settings(self.settings, self.db)
        return self._env


def declare_actors(broker: dramatiq.Broker, runtime: WorkerRuntime) -> dict[str, Any]:
    """Declare sigforge's actors on ``broker``; returns them by name."""
    limits = runtime.settings.broker

    def run_translation(translation_id: str) -> None:
        message = CurrentMessage.get_current_message()
        job_id = str(message.message_id) if message is not None else None
        with bound(job_id=job_id, translation_id=translation_id):
            TranslationJob(runtime.db, runtime.env, Actor("worker", job_id=job_id)).run(translation_id)

    actor = dramatiq.actor(
        broker=broker,
        actor_name=RUN_TRANSLATION,
        queue_name=TRANSLATIONS_QUEUE,
        max_retries=limits.max_retries,
        min_backoff=limits.min_backoff_ms,
        max_backoff=limits.max_backoff_ms,
        time_limit=int(limits.job_time_limit_s * 1000),
    )(run_translation)
    return {RUN_TRANSLATION: actor}
