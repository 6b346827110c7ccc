"""Drain throughput of the embedded SQLite broker against Redis, measured in the same run.

Usage::

    .venv/bin/python bench/bench_broker.py [--messages 5000] [--processes 2] [--threads 8]

For each broker: enqueue N messages (timed: enqueue rate), then start ``python -m dramatiq bench.bench_broker``
with P processes x T threads and time the drain from the first to the last job (timestamps written by the
jobs). Every message is checked to have run exactly once. Redis (``SFBENCH_REDIS_URL``, default
``redis://127.0.0.1:6379/14``, flushed) is skipped with a note when it is not running. Prints markdown rows.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import dramatiq

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("SFBENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = "bench"


def make_broker(kind: str, db: str) -> dramatiq.Broker:
    if kind == "sqlite":
        from sigforge.worker.brokers.sqlite import SQLiteBroker

        return SQLiteBroker(db)
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(url=REDIS_URL)


# -- worker side: `python -m dramatiq bench.bench_broker` imports this module with SFBENCH_KIND set --------------
if os.environ.get("SFBENCH_KIND"):
    _OUT = os.environ["SFBENCH_OUT"]
    broker = make_broker(os.environ["SFBENCH_KIND"], os.environ.get("SFBENCH_DB", ""))
    dramatiq.set_broker(broker)
    _fds: dict[int, int] = {}

    @dramatiq.actor(queue_name=QUEUE, max_retries=0)
    def record(i: int) -> None:
        pid = os.getpid()
        fd = _fds.get(pid)
        if fd is None:
            fd = _fds[pid] = os.open(f"{_OUT}/{pid}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(fd, f"{i} {time.time():.6f}\n".encode())


def _read(out: Path) -> tuple[collections.Counter[int], list[float]]:
    counts: collections.Counter[int] = collections.Counter()
    stamps: list[float] = []
    for path in out.glob("*.log"):
        for line in path.read_text().splitlines():
            i, ts = line.split()
            counts[int(i)] += 1
            stamps.append(float(ts))
    return counts, stamps


def _redis_up() -> bool:
    url = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def run(kind: str, n: int, processes: int, threads: int, workdir: Path) -> dict[str, float]:
    out = workdir / f"out-{kind}"
    out.mkdir()
    db = str(workdir / "bench.sqlite3")
    producer = make_broker(kind, db)
    if kind == "redis":
        producer.client.flushdb()
    producer.declare_queue(QUEUE)
    t0 = time.perf_counter()
    for i in range(n):
        producer.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name="record", args=(i,), kwargs={}, options={}))
    enqueue_s = time.perf_counter() - t0

    env = {**os.environ, "SFBENCH_KIND": kind, "SFBENCH_OUT": str(out), "SFBENCH_DB": db}
    argv = [sys.executable, "-m", "dramatiq", "bench.bench_broker", "--processes", str(processes)]
    proc = subprocess.Popen(
        [*argv, "--threads", str(threads)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 600
        while sum(_read(out)[0].values()) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # late duplicates
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        producer.close()
    counts, stamps = _read(out)
    window = max(stamps) - min(stamps) if len(stamps) > 1 else float("nan")
    return {
        "enqueue": n / enqueue_s,
        "drain": n / window,
        "missing": n - len(counts),
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    kinds = ["sqlite"] + (["redis"] if _redis_up() else [])
    results = {}
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            results[kind] = run(kind, args.messages, args.processes, args.threads, Path(tmp))
    shape = f"{args.processes}x{args.threads}"
    print("| broker | messages | processes x threads | enqueue msg/s | drain msg/s | missing / duplicated |")
    print("|---|---|---|---|---|---|")
    for kind, r in results.items():
        print(
            f"| {kind} | {args.messages} | {shape} | {r['enqueue']:,.0f} | {r['drain']:,.0f} |"
            f" {r['missing']:.0f} / {r['duplicates']:.0f} |"
        )
    if "redis" in results:
        ratio = results["sqlite"]["drain"] / results["redis"]["drain"]
        print(f"\nSQLite / Redis drain ratio: {ratio:.2f} (same run, same machine)")
    else:
        print(f"\nRedis not reachable at {REDIS_URL}: skipped, no ratio.")


if __name__ == "__main__":
    main()
