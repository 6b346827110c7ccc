"""`sigforge update apply` end to end on a real box (pidfile mode): v1 -> v2 with a migration, and every fault
leaving v1 running with its data intact."""

from __future__ import annotations

import signal

import pytest
from releasekit import REPO_HEAD, V2_REV, Box, Releases

from sigforge.updates import STEPS, Step

pytestmark = pytest.mark.slow

V2_STEPS = [f"update.{s}" for s in STEPS]


def assert_v1_intact(box: Box, before: dict[str, object]) -> None:
    assert box.current_version() == "1.0.0"
    assert box.ready() == (200, "1.0.0"), box.log()
    assert box.snapshot() == before
    revision, tables = box.schema()
    assert revision == REPO_HEAD
    assert "release_notes" not in tables
    assert not box.journal_exists()


def test_update_v1_to_v2_with_a_migration_keeps_all_data(box: Box, releases: Releases) -> None:
    before = box.snapshot()
    assert before["translations"] and before["artifacts"]
    result = box.update("apply", str(releases.v2_bundle))
    assert result.returncode == 0, result.stdout + result.stderr + box.log()
    assert "updated 1.0.0 -> 2.0.0" in result.stdout
    assert box.current_version() == "2.0.0"
    assert box.ready() == (200, "2.0.0")
    assert box.snapshot() == before
    revision, tables = box.schema()
    assert revision == V2_REV and "release_notes" in tables
    with box.db() as conn:
        assert conn.execute("SELECT text FROM release_notes").fetchall() == [(f"added by {V2_REV}",)]
    [record] = box.history()
    assert (record["previous"], record["target"], record["result"]) == ("1.0.0", "2.0.0", "committed")
    assert record["steps"] == V2_STEPS
    assert box.audit_actions() == V2_STEPS
    assert not box.journal_exists()
    # The anti-rollback floor moved: the v1 bundle (or v2 again: equal to the installed one) is refused now.
    older = box.update("apply", str(releases.v1_bundle))
    assert older.returncode == 1 and "[rollback]" in older.stderr, older.stderr
    status = box.update("status")
    assert "current:   2.0.0" in status.stdout and "running" in status.stdout
    history = box.update("history")
    assert "1.0.0 -> 2.0.0  committed" in history.stdout and "rejected" in history.stdout

    # `sigforge update rollback`: back to v1 with the database as it was before the update.
    refused = box.update("rollback")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    back = box.update("rollback", "--yes")
    assert back.returncode == 0, back.stdout + back.stderr + box.log()
    assert_v1_intact(box, before)
    assert box.history()[-1]["operation"] == "rollback"
    assert "update.rollback.restore-database" in box.audit_actions()


@pytest.mark.parametrize(
    ("bundle", "reason"),
    [("v2_bad_signature", "bad-signature"), ("v2_expired", "expired"), ("v0_9_bundle", "rollback")],
)
def test_a_rejected_bundle_changes_nothing(box: Box, releases: Releases, bundle: str, reason: str) -> None:
    before = box.snapshot()
    pid = (box.data / "sigforge.pid").read_text()
    result = box.update("apply", str(getattr(releases, bundle)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"rejected: [{reason}]" in result.stderr
    assert_v1_intact(box, before)
    assert (box.data / "sigforge.pid").read_text() == pid, "the services were never stopped"
    assert sorted(p.name for p in box.releases.iterdir()) == ["1.0.0"]
    assert box.history()[-1]["result"] == "rejected"
    assert box.audit_actions() == ["update.rejected"]


def test_a_migration_raising_halfway_is_rolled_back(box: Box, releases: Releases) -> None:
    before = box.snapshot()
    result = box.update("apply", str(releases.v2_migration_raises))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed at step migrated" in result.stdout and "fails halfway" in result.stdout
    assert_v1_intact(box, before)
    record = box.history()[-1]
    assert (record["result"], record["reached"]) == ("rolled-back", "migrated")
    actions = box.audit_actions()
    assert "update.failed" in actions and "update.rollback.restore-database" in actions
    assert actions[-1] == "update.rollback.healthy"
    assert not (box.releases / "2.0.0").exists()


def test_a_release_failing_its_health_check_is_rolled_back(box: Box, releases: Releases) -> None:
    before = box.snapshot()
    result = box.update("apply", str(releases.v2_unhealthy))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed at step healthy" in result.stdout
    assert_v1_intact(box, before)
    assert box.history()[-1]["reached"] == "healthy"
    assert "update.rollback.switch-back" in box.audit_actions()


@pytest.mark.parametrize("step", list(STEPS))
def test_sigkill_of_the_updater_at_each_step_then_recover(box: Box, releases: Releases, step: Step) -> None:
    before = box.snapshot()
    killed = box.update("apply", str(releases.v2_bundle), env={"SFTEST_UPDATE_FAULT": f"{step}:kill"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert box.journal_exists()
    # What the units' hooks do after a crash (ExecStopPost= of the updater's unit / ExecStartPre=).
    recovered = box.update("recover")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr + box.log()
    assert not box.journal_exists()
    if step is Step.COMMITTED:  # past the commit point the update is final: recovery finishes the bookkeeping
        assert box.current_version() == "2.0.0"
        assert box.ready() == (200, "2.0.0")
        assert box.snapshot() == before
        assert box.history()[-1]["result"] == "committed"
        return
    assert_v1_intact(box, before)
    record = box.history()[-1]
    assert (record["result"], record["reached"]) == ("rolled-back", str(step))
    actions = box.audit_actions()
    assert f"update.{step}" in actions and "update.interrupted" in actions
    # `recover` ran as current/bin/sigforge: after the switch that is v2's binary, which never deletes the tree it
    # runs from (the next apply replaces it); before the switch, v1's binary removes the staged v2 tree.
    ran_from_v2 = step in (Step.SWITCHED, Step.STARTED, Step.HEALTHY)
    assert (box.releases / "2.0.0").exists() == ran_from_v2
    again = box.update("recover")
    assert again.returncode == 0 and "nothing to recover" in again.stdout
