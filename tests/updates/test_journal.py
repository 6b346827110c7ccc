"""The pure part: the recovery rule for every step, the journal and history files, the fault hook, the layout."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sigforge.updates import (
    STEPS,
    HistoryRecord,
    InjectedFault,
    Journal,
    Layout,
    Step,
    Undo,
    clear_journal,
    fault_point,
    load_history,
    load_journal,
    record_history,
    recovery_plan,
    save_journal,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def journal(step: Step | None, doing: Step | None = None, operation: str = "apply") -> Journal:
    return Journal(id="u1", operation=operation, previous="1.0.0", target="2.0.0", started=T0, actor="t",  # type: ignore[arg-type]
                   step=step, doing=doing)  # fmt: skip


EXPECTED = {
    None: (Undo.REMOVE_RELEASE,),
    Step.VERIFIED: (Undo.REMOVE_RELEASE,),
    Step.STAGED: (Undo.REMOVE_RELEASE,),
    Step.WORKERS_STOPPED: (Undo.STOP_SERVICES, Undo.SWITCH_BACK, Undo.REMOVE_RELEASE, Undo.START_PREVIOUS),
    Step.DB_BACKED_UP: (Undo.STOP_SERVICES, Undo.SWITCH_BACK, Undo.REMOVE_RELEASE, Undo.START_PREVIOUS),
}
FULL = (Undo.STOP_SERVICES, Undo.SWITCH_BACK, Undo.RESTORE_DATABASE, Undo.REMOVE_RELEASE, Undo.START_PREVIOUS)


@pytest.mark.parametrize("step", [None, *STEPS])
def test_the_recovery_rule_for_each_finished_step(step: Step | None) -> None:
    plan = recovery_plan(journal(step))
    if step is Step.COMMITTED:
        assert plan == ()
    else:
        assert plan == EXPECTED.get(step, FULL)


def test_a_step_begun_counts_as_reached() -> None:
    # The migration had begun when the updater died: the database must be restored although `migrated` never was.
    assert Undo.RESTORE_DATABASE in recovery_plan(journal(Step.DB_BACKED_UP, doing=Step.MIGRATED))
    assert Undo.RESTORE_DATABASE not in recovery_plan(journal(Step.DB_BACKED_UP))
    # Stopping had begun: the services are stopped and started again.
    assert Undo.START_PREVIOUS in recovery_plan(journal(Step.STAGED, doing=Step.WORKERS_STOPPED))
    # The commit had begun but was not journaled: still rolled back.
    assert recovery_plan(journal(Step.HEALTHY, doing=Step.COMMITTED)) == FULL


def test_a_manual_rollback_always_runs_the_whole_plan() -> None:
    assert recovery_plan(journal(None, operation="rollback")) == (
        Undo.STOP_SERVICES, Undo.SWITCH_BACK, Undo.RESTORE_DATABASE, Undo.START_PREVIOUS)  # fmt: skip


def test_journal_and_history_round_trip_and_fail_closed(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    assert load_journal(path) is None
    save_journal(path, journal(Step.MIGRATED))
    assert load_journal(path) == journal(Step.MIGRATED)
    clear_journal(path)
    assert load_journal(path) is None
    path.write_text('{"schema": 1, "id": "x"')
    with pytest.raises(ValueError, match="damaged"):
        load_journal(path)
    hist = tmp_path / "history.json"
    rec = HistoryRecord(id="a", operation="apply", previous="1.0.0", target="2.0.0", started=T0, finished=T0,
                        result="committed")  # fmt: skip
    record_history(hist, rec)
    record_history(hist, rec)  # finishing the same operation twice keeps one record
    assert load_history(hist) == [rec]


def test_the_fault_hook_only_crashes_at_the_named_step() -> None:
    fault_point("migrated", {"SFTEST_UPDATE_FAULT": "switched:raise"})
    fault_point("migrated", {"SFTEST_UPDATE_FAULT": "migrated:nonsense"})
    fault_point("migrated", {})
    with pytest.raises(InjectedFault):
        fault_point("migrated", {"SFTEST_UPDATE_FAULT": "migrated:raise"})


def test_current_is_switched_atomically_by_rename(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    for v in ("1.0.0", "2.0.0"):
        (layout.release(v) / "bin").mkdir(parents=True)
        (layout.release(v) / "bin" / "sigforge").write_text("#!/bin/sh\n")
    assert layout.current_version() is None
    layout.switch("1.0.0")
    assert layout.current.readlink() == Path("releases/1.0.0")
    layout.switch("2.0.0")
    assert layout.current_version() == "2.0.0"
    assert sorted(p.name for p in layout.root.iterdir()) == ["current", "releases"]  # no temp link left
    assert layout.installed() == ["1.0.0", "2.0.0"]
    with pytest.raises(FileNotFoundError):
        layout.switch("3.0.0")
    with pytest.raises(ValueError):
        layout.release("../x")
