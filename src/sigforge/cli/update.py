"""``sigforge update apply|status|history|rollback|recover`` (see docs/updates.md).

- ``apply BUNDLE``: copy the release bundle to local storage, verify it, stage it beside the current release, stop
  the services, back up the database, migrate it with the NEW release, switch ``current``, start, health-check,
  commit; any failure rolls back automatically (previous release, restored database).
- ``run-requests``: apply the update an admin requested from the console (``POST /api/v1/updates`` stored a
  verified bundle under ``<data_dir>/updates/requests``) exactly as ``apply`` does, in that admin's name
  (``web:<name>``); the request is deleted whatever the outcome. Run as root by ``sigforge-update.service`` (a path
  unit watches the directory) or, without systemd, launched detached by ``sigforge up``.
- ``recover``: finish or undo an operation a crash interrupted (run by the units' hooks; ``--no-start`` for
  ``ExecStartPre=``: files and database only).
- ``rollback --yes``: return to the release before the last committed update, with the database as it was then.
- ``status``, ``history``: what runs, what is installed, what happened.

Common options: ``--prefix DIR`` (the root of the layout, default ``/``), ``--services auto|systemd|pidfile``.

Exit codes: 0 ok (``recover``, ``run-requests``: also when there was nothing to do), 1 the bundle was rejected or
the update failed and was rolled back, 2 bad input, 3 not ready (another operation runs, an interrupted one awaits
``recover``, a rollback that left the previous release unhealthy).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sigforge.cli.service_manager import ProcessHost, make_manager, ready_url
from sigforge.errors import InvalidInput
from sigforge.logging import configure_logging
from sigforge.services.context import Actor
from sigforge.services.updates import UpdateFailed, UpdateService, restore_database_dump
from sigforge.settings import Settings, find_config_file
from sigforge.updates import HistoryRecord, Layout, data_owner, load_journal

EXIT_OK, EXIT_FAILED, EXIT_NOT_READY = 0, 1, 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--prefix", type=Path, default=Path("/"), help="root of the installation (default: /)")
    common.add_argument("--services", choices=("auto", "systemd", "pidfile"), default="auto",
                        help="how services are run (auto: systemd when it runs this machine)")  # fmt: skip
    common.add_argument("--health-timeout", type=float, default=90.0, metavar="S",
                        help="seconds a started release has to become ready (default 90)")  # fmt: skip
    update = sub.add_parser("update", help="signed updates: apply, status, history, rollback, recover")
    actions = update.add_subparsers(dest="update_command", required=True, metavar="ACTION")
    apply = actions.add_parser("apply", parents=[common], help="install a signed release bundle")
    apply.add_argument("bundle", type=Path, metavar="BUNDLE")
    actions.add_parser("run-requests", parents=[common], help="apply the update requested from the console, if any")
    actions.add_parser("status", parents=[common], help="the current release, the services, an unfinished update")
    actions.add_parser("history", parents=[common], help="every update, rollback and rejection")
    rollback = actions.add_parser(
        "rollback", parents=[common], help="return to the release before the last update (its database backup)"
    )
    rollback.add_argument("--yes", action="store_true", help="confirm: changes made since that update are lost")
    recover = actions.add_parser("recover", parents=[common], help="finish or undo an interrupted update")
    recover.add_argument(
        "--no-start", action="store_true", help="repair files and database only; neither stop nor start services"
    )
    # Run by the updater in the PREVIOUS release: load a PostgreSQL dump backup into that release's own schema.
    restore_db = actions.add_parser("restore-db", help=argparse.SUPPRESS)
    restore_db.add_argument("backup", type=Path)


def _service(args: argparse.Namespace, settings: Settings) -> UpdateService:
    config = find_config_file(args.config, os.environ)
    config_file = str(config.resolve()) if config is not None else None
    layout = Layout(args.prefix.resolve())
    kind = args.services
    if kind == "auto":  # an unfinished operation is recovered with the manager it started with
        try:
            pending = load_journal(settings.data_path / "updates" / "journal.json")
        except ValueError:
            pending = None
        if pending is not None and pending.services:
            kind = pending.services
    owner = data_owner(settings.data_path)  # root updating a box whose data belongs to the service user
    services = make_manager(kind, layout.current, settings, config_file, run_as=owner)
    process_host = ProcessHost(services, ready_url=ready_url(settings), config_file=config_file, run_as=owner)
    return UpdateService(settings, layout, process_host, Actor("cli:update"), health_timeout_s=args.health_timeout,
                         owner=owner)  # fmt: skip


def _print_record(record: HistoryRecord) -> None:
    where = f" at {record.reached}" if record.result != "committed" and record.reached else ""
    print(f"{record.finished:%Y-%m-%d %H:%M:%S}Z  {record.operation:8}  {record.previous or '-'} -> "
          f"{record.target or '-'}  {record.result}{where}  [{record.id}]")  # fmt: skip
    if record.error:
        print(f"    {record.error}")


def _run_requests(service: UpdateService) -> int:
    try:
        done = service.run_request()
    except UpdateFailed as exc:
        print(f"sigforge: the requested update failed: {exc}")
        return EXIT_FAILED if exc.detail.get("result") == "rolled-back" else EXIT_NOT_READY
    if done is None:
        print("no update request is pending")
        return EXIT_OK
    request, record = done
    print(f"updated {record.previous} -> {record.target} as requested by {request.requested_by} (update {record.id})")
    return EXIT_OK


def run_update(args: argparse.Namespace, settings: Settings) -> int:  # noqa: PLR0911, PLR0912 - one return per action
    configure_logging("warning", "console")
    command = args.update_command
    if command == "restore-db":
        rows = restore_database_dump(settings, args.backup)
        print(f"database restored from {args.backup}: {sum(rows.values())} rows")
        return EXIT_OK
    service = _service(args, settings)
    if command == "apply":
        try:
            record = service.apply(args.bundle)
        except UpdateFailed as exc:
            print(f"sigforge: update failed: {exc}")
            return EXIT_FAILED if exc.detail.get("result") == "rolled-back" else EXIT_NOT_READY
        print(f"updated {record.previous} -> {record.target} (update {record.id})")
        return EXIT_OK
    if command == "run-requests":
        return _run_requests(service)
    if command == "recover":
        recovered = service.recover(start=not args.no_start)
        if recovered is None:
            print("nothing to recover")
            return EXIT_OK
        _print_record(recovered)
        return EXIT_NOT_READY if recovered.result == "rollback-unhealthy" else EXIT_OK
    if command == "rollback":
        if not args.yes:
            raise InvalidInput("a rollback restores the database as it was before the last update: everything "
                               "changed since is lost; give --yes to confirm")  # fmt: skip
        record = service.rollback()
        _print_record(record)
        return EXIT_OK if record.result == "rolled-back" else EXIT_NOT_READY
    if command == "history":
        for record in service.history():
            _print_record(record)
        return EXIT_OK
    status = service.status()
    print(f"current:   {status.current or '(none)'}")
    print(f"installed: {', '.join(status.installed) or '(none)'}")
    print(f"services:  {'running' if status.running else 'stopped'} ({service.host.name})")
    if status.journal is not None:
        j = status.journal
        print(f"UNFINISHED {j.operation} {j.previous} -> {j.target}: reached {j.reached}, {j.phase}; "
              "run `sigforge update recover`")  # fmt: skip
    if status.request is not None:
        r = status.request
        print(f"requested: {r.version} by {r.requested_by} at {r.requested_at:%Y-%m-%d %H:%M:%S}Z [{r.id}]")
    if status.last is not None:
        print("last:      ", end="")
        _print_record(status.last)
    return EXIT_OK
