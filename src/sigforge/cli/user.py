"""``sigforge user create|list|passwd|disable|enable|bootstrap-admin``: the box's users.

Whoever can run this command on the box (root, or the ``sigforge`` system user) administers users; every change is
an audit event with actor ``cli``. ``create`` and ``bootstrap-admin`` print a generated one-time password exactly
once; the user must replace it at the first sign-in. ``bootstrap-admin`` creates the first admin only while no
admin exists (otherwise it says so and exits 0), which is what the installer runs after the migrations.

Exit codes: 0 ok, 1 the user does not exist or clashes with the current state (name taken, last admin),
2 bad input (name, role, password), 3 the box is not ready (schema).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime

from sigforge.cli.db import open_database
from sigforge.db import migrate
from sigforge.db.models import Role
from sigforge.db.types import utcnow
from sigforge.errors import Conflict, InvalidInput, NotFound
from sigforge.logging import configure_logging
from sigforge.services.context import Actor
from sigforge.services.users import DEFAULT_ADMIN, UserService, UserView
from sigforge.settings import Settings

ACTOR = Actor("cli")
EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    user = sub.add_parser("user", help="users: create, list, passwd, disable, enable, bootstrap-admin")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a user; prints a one-time password once")
    create.add_argument("name")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.ENGINEER.value)
    actions.add_parser("list", help="users, their role and state")
    passwd = actions.add_parser("passwd", help="set a user's password (from the terminal, or --password-stdin)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    passwd.add_argument("--temporary", action="store_true", help="the user must change it at the next sign-in")
    disable = actions.add_parser("disable", help="disable a user and sign them out everywhere")
    disable.add_argument("name")
    enable = actions.add_parser("enable", help="enable a disabled user again")
    enable.add_argument("name")
    boot = actions.add_parser("bootstrap-admin", help="create the first admin, only if no admin exists yet")
    boot.add_argument("--name", default=DEFAULT_ADMIN, help=f"the admin's user name (default: {DEFAULT_ADMIN})")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise InvalidInput("no password on stdin")
        return password
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to read the password from: use --password-stdin")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Repeat it: "):
        raise InvalidInput("the two passwords differ")
    return first


def _show_once(view: UserView, otp: str) -> None:
    print(f"created {view.role} {view.name!r}")
    print(f"  user name:          {view.name}")
    print(f"  one-time password:  {otp}")
    print("It is shown only this once. Sign in with it and choose a new password at once.")


def _row(view: UserView, now: datetime) -> str:
    if view.disabled:
        state = "disabled"
    elif view.locked_until is not None and view.locked_until > now:
        state = "locked"  # too many wrong passwords; `user passwd` unlocks
    else:
        state = "must-change-password" if view.must_change_password else "active"
    return f"{view.name:<24} {view.role:<9} {state:<21} {view.created_at.isoformat(timespec='seconds')}"


def run_user(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging("warning", "console")
    db = open_database(settings)
    try:
        migrate.ensure_at_head(db)
        return _dispatch(args, UserService(db))
    except (NotFound, Conflict) as exc:
        print(f"sigforge: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        db.dispose()


def _dispatch(args: argparse.Namespace, users: UserService) -> int:
    command = args.user_command
    if command == "create":
        view, otp = users.create(args.name, args.role, ACTOR)
        _show_once(view, otp)
    elif command == "bootstrap-admin":
        created = users.bootstrap_admin(ACTOR, args.name)
        if created is None:
            admins = [u.name for u in users.users() if u.role == Role.ADMIN]
            print(f"an admin exists already ({', '.join(admins)}): no user was created")
        else:
            _show_once(*created)
    elif command == "list":
        print(f"{'name':<24} {'role':<9} {'state':<21} created")
        now = utcnow()
        for view in users.users():
            print(_row(view, now))
    elif command == "passwd":
        users.show(args.name)  # an unknown name fails before asking for a password
        users.set_password(args.name, _read_password(args.password_stdin), ACTOR, must_change=args.temporary)
        print(f"password of {args.name!r} set; all their sessions were signed out")
    else:
        view = users.set_disabled(args.name, command == "disable", ACTOR)
        print(f"{view.name!r} is {'disabled' if view.disabled else 'enabled'}")
    return EXIT_OK
