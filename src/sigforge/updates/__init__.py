"""Signed updates, the pure part: the on-box layout (releases, the ``current`` link), the update journal with its
ordered steps and the recovery rule for each, the history, and the test-only fault hook. No database, web, worker or
process imports; ``services/updates.py`` orchestrates. See docs/updates.md.
"""

from sigforge.updates.faults import FAULT_ENV, InjectedFault, fault_point
from sigforge.updates.history import HistoryRecord, load_history, record_history
from sigforge.updates.journal import (
    STEPS,
    Event,
    Journal,
    Step,
    Undo,
    clear_journal,
    load_journal,
    recovery_plan,
    save_journal,
)
from sigforge.updates.layout import Layout
from sigforge.updates.ownership import Owner, data_owner, hand_over
from sigforge.updates.requests import (
    REQUESTS_DIR,
    UpdateRequest,
    load_request,
    lock_held,
    release_prefix,
    remove_request,
    request_files,
    save_request,
)

__all__ = [
    "FAULT_ENV",
    "REQUESTS_DIR",
    "STEPS",
    "Event",
    "HistoryRecord",
    "InjectedFault",
    "Journal",
    "Layout",
    "Owner",
    "Step",
    "Undo",
    "UpdateRequest",
    "clear_journal",
    "data_owner",
    "fault_point",
    "hand_over",
    "load_history",
    "load_journal",
    "load_request",
    "lock_held",
    "record_history",
    "recovery_plan",
    "release_prefix",
    "remove_request",
    "request_files",
    "save_journal",
    "save_request",
]
