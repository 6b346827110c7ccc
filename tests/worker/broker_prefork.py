"""A tiny pre-forking worker launcher: ``python tests/worker/broker_prefork.py PROCESSES THREADS``.

Unlike Dramatiq's CLI (which forks before importing the broker), this parent creates the broker, claims from
it (so it has open connections, a worker id and a running heartbeat thread) and only then forks the workers,
then closes its own broker. It exercises the ``os.register_at_fork`` reset: children sharing the parent's id,
connections or (missing) heartbeat thread would get their in-flight messages requeued and run twice.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback

import dramatiq

sys.path.insert(0, os.getcwd())
from tests.worker import broker_actors


def _child(threads: int) -> None:
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    worker = dramatiq.Worker(broker_actors.broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    while not stop:
        time.sleep(0.05)
    worker.stop()
    broker_actors.broker.close()


def main() -> None:
    processes, threads = int(sys.argv[1]), int(sys.argv[2])
    broker = broker_actors.broker
    consumer = broker.consume(broker_actors.QUEUE)  # starts the parent's heartbeat thread
    next(consumer)
    consumer.close()
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _child(threads)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    broker.close()  # retires the parent's worker id: must not touch the children's messages

    def forward(signum: int, frame: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    codes = [os.waitpid(child, 0)[1] for child in children]
    sys.exit(1 if any(codes) else 0)


if __name__ == "__main__":
    main()
