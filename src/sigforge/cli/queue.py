"""``sigforge queue stats|dead-letters|retry|purge``: operate the embedded broker's queue and dead letters.

Retry and purge are admin actions: each writes an audit event. Redis and RabbitMQ have their own tools: for them
the command is refused with a pointer to those, rather than pretending.
"""

from __future__ import annotations

import argparse

from sigforge.cli.db import open_database
from sigforge.db.repositories import AuditRepository
from sigforge.errors import InvalidInput, NotFound
from sigforge.logging import configure_logging
from sigforge.settings import Settings
from sigforge.worker.broker import make_broker
from sigforge.worker.brokers.sqlite import SQLiteBroker


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    queue = sub.add_parser("queue", help="the embedded job queue: stats, dead letters, retry, purge")
    actions = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    actions.add_parser("stats", help="messages per queue and state")
    dead = actions.add_parser("dead-letters", help="list dead-lettered messages, newest first")
    dead.add_argument("--limit", type=int, default=20)
    retry = actions.add_parser("retry", help="requeue one dead letter with a fresh retry budget")
    retry.add_argument("message_id")
    purge = actions.add_parser("purge", help="delete dead letters")
    purge.add_argument("--queue", help="only this queue (default: all)")


def _audit(settings: Settings, action: str, subject_id: str, **detail: object) -> None:
    db = open_database(settings)
    try:
        with db.scope() as session:
            AuditRepository(session).record(
                actor="cli", action=action, subject_type="queue", subject_id=subject_id, detail=dict(detail)
            )
    finally:
        db.dispose()


def run_queue(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging("warning", "console")
    broker = make_broker(settings)
    try:
        if not isinstance(broker, SQLiteBroker):
            raise InvalidInput(
                f"`sigforge queue` operates the embedded broker; broker.url names {type(broker).__name__}: "
                "use that server's own tools (rabbitmqctl, redis-cli) for its queues"
            )
        if args.queue_command == "stats":
            stats = broker.queue_stats()
            print(f"{'queue':<20} {'queued':>8} {'delayed':>8} {'running':>8} {'dead':>8}")
            for name, counts in sorted(stats.items()):
                print(
                    f"{name:<20} {counts.get('queued', 0):>8} {counts.get('delayed', 0):>8} "
                    f"{counts.get('consumed', 0):>8} {counts.get('rejected', 0):>8}"
                )
            return 0
        if args.queue_command == "dead-letters":
            if args.limit <= 0:
                raise InvalidInput(f"--limit must be positive, got {args.limit}")
            for message in broker.dead_letters(limit=args.limit):
                error = str(message.options.get("dead_letter_error", "")).splitlines()[:1]
                print(
                    f"{message.message_id}  {message.queue_name}  {message.actor_name}{message.args}  {''.join(error)}"
                )
            return 0
        if args.queue_command == "retry":
            if not broker.retry_dead_letter(args.message_id):
                raise NotFound(f"no dead letter with message id {args.message_id!r}")
            _audit(settings, "queue.dead_letter_retried", args.message_id)
            print(f"requeued {args.message_id}")
            return 0
        purged = broker.purge_dead_letters(args.queue)
        _audit(settings, "queue.dead_letters_purged", args.queue or "*", count=purged)
        print(f"purged {purged} dead letter(s)")
        return 0
    finally:
        broker.close()
