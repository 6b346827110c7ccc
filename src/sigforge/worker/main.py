"""The module Dramatiq's worker processes import (``dramatiq sigforge.worker.main``).

It loads the settings from the environment (``SIGFORGE_CONFIG`` and ``SIGFORGE_*``, which ``sigforge worker``
passes down), refuses a database schema it does not understand, and declares the actors on the broker.
"""

from __future__ import annotations

import dramatiq

from sigforge.db import migrate
from sigforge.logging import configure_logging
from sigforge.settings import load_settings
from sigforge.worker.actors import WorkerRuntime, declare_actors
from sigforge.worker.broker import make_broker

settings = load_settings()
configure_logging(settings.log_level, settings.log_format)
runtime = WorkerRuntime(settings)
migrate.ensure_at_head(runtime.db)
broker = make_broker(settings)
dramatiq.set_broker(broker)
actors = declare_actors(broker, runtime)
