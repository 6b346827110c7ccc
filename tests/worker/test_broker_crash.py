"""SQLiteBroker under real worker processes: SIGKILL, SIGTERM, forking, long jobs, volume.

Workers run as separate processes (Dramatiq's CLI, or ``broker_prefork.py``) on ``broker_actors``; each job
journals ``start``/``done`` lines per process, from which every test checks "no loss, no duplicate".
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dramatiq import Message

from sigforge.worker.brokers.sqlite import SQLiteBroker
from support import REPO_ROOT, child_env

pytestmark = pytest.mark.slow

QUEUE = "sftest"  # broker_actors.QUEUE (not imported: importing it would build a broker from the environment)


class Cluster:
    """Worker processes on one broker file, a producer broker in this process, and their journals."""

    def __init__(self, tmp_path: Path, *, interval: float, ttl: float) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "broker.sqlite3"
        self.out = tmp_path / "journal"
        self.out.mkdir()
        self.env = child_env(
            SFTEST_BROKER_DB=str(self.db),
            SFTEST_BROKER_OUT=str(self.out),
            SFTEST_HB_INTERVAL=str(interval),
            SFTEST_HB_TTL=str(ttl),
        )
        self.producer = SQLiteBroker(self.db, heartbeat_interval_s=interval, heartbeat_ttl_s=ttl)
        self.producer.declare_queue(QUEUE)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"workers-{len(self.procs)}.err"
        with log.open("wb") as err:
            # A session of its own: close() can then reap forked children that outlive their parent.
            proc = subprocess.Popen(
                argv, cwd=REPO_ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def start_cli(self, processes: int, threads: int) -> subprocess.Popen[bytes]:
        """``python -m dramatiq tests.worker.broker_actors`` (forks its worker processes)."""
        argv = [sys.executable, "-m", "dramatiq", "tests.worker.broker_actors"]
        return self._spawn([*argv, "--processes", str(processes), "--threads", str(threads)])

    def start_prefork(self, processes: int, threads: int) -> subprocess.Popen[bytes]:
        """``broker_prefork.py``: the broker is live in the parent before it forks."""
        script = str(Path(__file__).with_name("broker_prefork.py"))
        return self._spawn([sys.executable, script, str(processes), str(threads)])

    def send(self, actor: str, *args: object, delay: int | None = None) -> None:
        message: Message[object] = Message(queue_name=QUEUE, actor_name=actor, args=args, kwargs={}, options={})
        self.producer.enqueue(message, delay=delay)

    def journal(self) -> collections.Counter[tuple[str, str]]:
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for path in self.out.glob("*.log"):
            for line in path.read_text().splitlines():
                event, key, _pid = line.split()
                counts[event, key] += 1
        return counts

    def journal_pids(self, event: str) -> dict[str, set[int]]:
        pids: dict[str, set[int]] = collections.defaultdict(set)
        for path in self.out.glob("*.log"):
            for line in path.read_text().splitlines():
                ev, key, pid = line.split()
                if ev == event:
                    pids[key].add(int(pid))
        return pids

    def workers(self) -> list[tuple[str, int]]:
        with sqlite3.connect(self.db) as conn:
            return [(str(w), int(p)) for w, p in conn.execute("SELECT worker_id, pid FROM broker_workers")]

    def stderr(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # forked workers left behind by a killed parent
        self.producer.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def assert_exactly_once(journal: collections.Counter[tuple[str, str]], keys: list[str]) -> None:
    done = {k: journal["done", k] for k in keys}
    assert all(n == 1 for n in done.values()), f"lost or duplicated completions: {done}"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, interval=0.2, ttl=1.5)
    yield c
    c.close()


@pytest.mark.parametrize("launcher", ["cli", "prefork"])
def test_sigkill_mid_message_is_redelivered_and_completed_exactly_once(cluster: Cluster, launcher: str) -> None:
    # Two worker processes x 2 threads (prefetch 4 each) share 8 slow jobs; one process is SIGKILLed
    # mid-job and the other one's reaper must requeue everything it held. "cli": two independent Dramatiq
    # CLI groups (the victim's master exits with it). "prefork": siblings forked from one parent that used
    # the broker first, so a child that kept the parent's worker id would shield the victim from the reaper.
    if launcher == "cli":
        groups = [cluster.start_cli(processes=1, threads=2), cluster.start_cli(processes=1, threads=2)]
    else:
        groups = [cluster.start_prefork(processes=2, threads=2)]
    wait_for(lambda: len(cluster.workers()) == 2, 20, "two worker processes to register")
    keys = [f"job{i}" for i in range(8)]
    for key in keys:
        cluster.send("slow", key, 1.0)
    cluster.send("quick", "delayed", delay=2500)  # due after the crash: must survive it
    wait_for(lambda: len(cluster.journal_pids("start")) >= 4, 20, "both processes to start jobs")
    starts = collections.Counter(p for pids in cluster.journal_pids("start").values() for p in pids)
    victim_pid = starts.most_common(1)[0][0]
    (victim_id,) = [w for w, pid in cluster.workers() if pid == victim_pid]
    started_by_victim = {k for k, pids in cluster.journal_pids("start").items() if victim_pid in pids}
    os.kill(victim_pid, signal.SIGKILL)

    everything = [*keys, "delayed"]
    wait_for(lambda: all(cluster.journal()["done", k] for k in everything), 30, "all jobs to finish")
    time.sleep(0.5)  # late duplicates would show up here
    journal = cluster.journal()
    assert_exactly_once(journal, everything)
    done_by_victim = {k for k, pids in cluster.journal_pids("done").items() if victim_pid in pids}
    killed_mid_job = started_by_victim - done_by_victim
    assert killed_mid_job, "the kill was meant to land mid-job"
    assert all(journal["start", k] == 2 for k in killed_mid_job)  # ran again, elsewhere
    assert cluster.producer.queue_stats()[QUEUE] == {"queued": 0, "delayed": 0, "consumed": 0, "rejected": 0}
    assert victim_id not in [w for w, _ in cluster.workers()]
    assert "presumed dead" in cluster.stderr()
    for group in groups:  # (the victim's CLI master exits by itself once it notices its dead child)
        if group.poll() is None:
            group.send_signal(signal.SIGTERM)
        group.wait(20)


@pytest.mark.parametrize("launcher", ["cli", "prefork"])
def test_job_longer_than_ttl_is_not_redelivered_while_its_worker_lives(tmp_path: Path, launcher: str) -> None:
    # The fork/heartbeat race test: two forked worker processes, jobs (and prefetched messages waiting in
    # memory) lasting 3x the TTL. Any process holding messages without a live heartbeat of its own id, or
    # a fork child sharing its parent's id, would get them reaped and run twice.
    cluster = Cluster(tmp_path, interval=0.2, ttl=0.8)
    try:
        start = cluster.start_cli if launcher == "cli" else cluster.start_prefork
        group = start(2, 2)
        wait_for(lambda: len(cluster.workers()) == 2, 20, "two worker processes to register")
        keys = [f"long{i}" for i in range(6)]
        for key in keys:
            cluster.send("slow", key, 2.0)
        wait_for(lambda: all(cluster.journal()["done", k] for k in keys), 30, "the long jobs to finish")
        time.sleep(1.0)
        journal = cluster.journal()
        assert {k: journal["start", k] for k in keys} == dict.fromkeys(keys, 1), "a long job was redelivered"
        assert_exactly_once(journal, keys)
        assert len({pid for _, pid in cluster.workers()}) == 2
        err = cluster.stderr()
        assert "presumed dead" not in err and "declared dead" not in err
        assert cluster.stop(group) == 0
        assert "Traceback" not in cluster.stderr()
    finally:
        cluster.close()


def test_sigterm_requeues_prefetched_messages_and_loses_nothing(cluster: Cluster) -> None:
    group = cluster.start_cli(processes=1, threads=2)  # prefetch 4: 2 running, 2 waiting in memory
    wait_for(lambda: len(cluster.workers()) == 1, 20, "the worker to register")
    keys = [f"job{i}" for i in range(12)]
    for key in keys:
        cluster.send("slow", key, 0.6)
    wait_for(lambda: len(cluster.journal_pids("start")) >= 2, 20, "jobs to start")
    assert cluster.stop(group) == 0

    journal = cluster.journal()
    done = {k for k in keys if journal["done", k]}
    assert all(journal["start", k] == journal["done", k] for k in keys), "a graceful stop cut a job short"
    stats = cluster.producer.queue_stats()[QUEUE]
    assert stats["consumed"] == 0, "prefetched messages were left claimed"
    assert stats["queued"] == len(keys) - len(done) > 0
    assert cluster.workers() == []
    err = cluster.stderr()
    assert "Traceback" not in err and "Failed to requeue" not in err

    restarted = cluster.start_cli(processes=1, threads=4)
    wait_for(lambda: all(cluster.journal()["done", k] for k in keys), 30, "the rest to finish")
    journal = cluster.journal()
    assert_exactly_once(journal, keys)
    assert all(journal["start", k] == 1 for k in keys)
    assert cluster.stop(restarted) == 0


def test_many_messages_across_processes_and_threads_run_exactly_once(cluster: Cluster) -> None:
    group = cluster.start_cli(processes=2, threads=4)
    wait_for(lambda: len(cluster.workers()) == 2, 20, "two worker processes to register")
    keys = [f"m{i}" for i in range(300)]
    for key in keys:
        cluster.send("quick", key)
    wait_for(lambda: sum(n for (ev, _), n in cluster.journal().items() if ev == "done") >= 300, 40, "300 jobs")
    time.sleep(0.5)
    journal = cluster.journal()
    assert {k: journal["start", k] for k in keys} == dict.fromkeys(keys, 1)
    assert_exactly_once(journal, keys)
    assert len({p for pids in cluster.journal_pids("done").values() for p in pids}) == 2  # both did work
    assert cluster.producer.queue_stats()[QUEUE] == {"queued": 0, "delayed": 0, "consumed": 0, "rejected": 0}
    assert cluster.stop(group) == 0


def test_poison_message_that_kills_its_worker_is_dead_lettered_after_max_deliveries(tmp_path: Path) -> None:
    # The suicide actor SIGKILLs its worker process every time; a respawning one-thread worker (prefetch 2, so
    # an innocent message is held beside the poison at every death) keeps coming back. With the default
    # max_deliveries (5) the fifth death must turn the poison into a dead letter; the rest then runs once.
    cluster = Cluster(tmp_path, interval=0.1, ttl=0.3)
    try:
        script = str(Path(__file__).with_name("broker_actors.py"))
        group = cluster._spawn([sys.executable, script, "1"])
        cluster.send("suicide", "poison")
        keys = [f"ok{i}" for i in range(3)]
        for key in keys:
            cluster.send("quick", key)
        wait_for(lambda: all(cluster.journal()["done", k] for k in keys), 30, "the poison to be dead-lettered")
        journal = cluster.journal()
        assert journal["start", "poison"] == 5
        assert_exactly_once(journal, keys)
        assert all(journal["start", k] == 1 for k in keys)  # the prefetched bystander was never dead-lettered
        (dead,) = cluster.producer.dead_letters(QUEUE)
        assert dead.actor_name == "suicide"
        assert dead.options["dead_letter_error"] == "abandoned by a dead worker 5 times (max_deliveries=5)"
        drained = {"queued": 0, "delayed": 0, "consumed": 0, "rejected": 1}
        wait_for(lambda: cluster.producer.queue_stats()[QUEUE] == drained, 5, "the last acks")  # ack follows "done"
        assert "poison messages?" in cluster.stderr()
        assert cluster.stop(group) == 0
    finally:
        cluster.close()
