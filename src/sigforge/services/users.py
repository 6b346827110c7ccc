"""Users, sign-in and who may do what.

Invariants:
    * A password is stored only as a scrypt hash (``services.passwords``); a sign-in token only as its SHA-256.
    * A new user gets a generated one-time password, shown once to whoever created it; until they choose their own
      (``change_password``), their token is good for nothing but the session endpoints (``PasswordChangeRequired``).
    * A failed sign-in says the same thing whatever went wrong (unknown user, wrong password, disabled, locked), and
      an unknown name costs the same scrypt work as a known one: the answer does not reveal which names exist.
      The audit event (written even though the sign-in fails) records the real reason.
    * ``MAX_FAILED_LOGINS`` consecutive failures lock sign-in for that user for ``LOCKOUT``; a success, or a
      password set on the CLI, clears the count.
    * Disabling a user, or setting their password, revokes all their tokens; changing one's own password revokes
      all tokens but the one in use. The last enabled admin cannot be disabled.
    * Every change, sign-in, sign-out and failed sign-in is an audit event (``subject_type`` ``user``).

Every method opens and commits its own transaction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy.exc
from sqlalchemy.orm import Session

from sigforge.db.models import ApiToken, Role, User
from sigforge.db.repositories import AuditRepository, UserRepository
from sigforge.db.session import Database
from sigforge.db.types import utcnow
from sigforge.errors import Conflict, Forbidden, InvalidInput, NotFound, PasswordChangeRequired, Unauthenticated
from sigforge.services import passwords
from sigforge.services.context import Actor

MAX_NAME = 64
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
# The channel names an Actor carries when no person is known: no user may take one (the audit log stays unambiguous).
RESERVED_NAMES = frozenset({"api", "cli", "worker", "system", "root"})
MIN_PASSWORD, MAX_PASSWORD = 12, 1024
TOKEN_LIFETIME = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # how stale ``last_used_at`` may get before a request writes it again
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=5)
BAD_LOGIN = "the user name or password is wrong, or the account cannot sign in"
DEFAULT_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class UserView:
    name: str
    role: str
    must_change_password: bool
    disabled: bool
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user, as resolved from a token."""

    user_id: str
    name: str
    role: str
    must_change_password: bool
    token_id: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def actor(self, request_id: str | None = None) -> Actor:
        return Actor(self.name, request_id=request_id)


@dataclass(frozen=True, slots=True)
class SignIn:
    principal: Principal
    token: str  # the only time the clear token exists: it is not stored


def _view(user: User) -> UserView:
    return UserView(
        name=user.name, role=user.role, must_change_password=user.must_change_password, disabled=user.disabled,
        locked_until=user.locked_until, created_at=user.created_at, updated_at=user.updated_at,
    )  # fmt: skip


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"user name {name[:80]!r} is not allowed: 1-64 characters, lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter",
            pointer="name",
        )
    if name in RESERVED_NAMES:
        raise InvalidInput(f"user name {name!r} is reserved", pointer="name")
    return name


def check_new_password(password: str, *, pointer: str = "new_password") -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD} characters", pointer=pointer)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD} characters", pointer=pointer)
    if password.strip() != password or not password.isprintable():
        raise InvalidInput(
            "the password must not start or end with white space or hold control characters", pointer=pointer
        )
    return password


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {role[:40]!r}: expected one of {roles}", pointer="role") from None


def require_admin(principal: Principal) -> Principal:
    """The principal, if it may run admin actions now.

    Raises:
        PasswordChangeRequired: it signed in with a one-time password and has not chosen its own yet.
        Forbidden: it is not an admin.
    """
    require_usable(principal)
    if not principal.is_admin:
        raise Forbidden(f"only an admin may do this; {principal.name!r} is an {principal.role}")
    return principal


def require_usable(principal: Principal) -> Principal:
    if principal.must_change_password:
        raise PasswordChangeRequired(
            "choose a new password first (POST /api/v1/session/password): this session was opened with a one-time "
            "password"
        )
    return principal


class UserService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    # ---- administration --------------------------------------------------------------------------------------

    def users(self) -> list[UserView]:
        with self.db.scope(write=False) as session:
            return [_view(u) for u in UserRepository(session).all()]

    def show(self, name: str) -> UserView:
        with self.db.scope(write=False) as session:
            return _view(self._get(UserRepository(session), name))

    def create(self, name: str, role: str, actor: Actor) -> tuple[UserView, str]:
        """A new user with a generated one-time password, returned here and never again.

        Raises:
            InvalidInput: the name or role is not allowed.
            Conflict: a user of that name exists.
        """
        check_name(name)
        checked_role = check_role(role)
        with self.db.scope() as session:
            return self._create(session, name, checked_role, actor, bootstrap=False)

    def bootstrap_admin(self, actor: Actor, name: str = DEFAULT_ADMIN) -> tuple[UserView, str] | None:
        """The first admin, with a one-time password; None (nothing done) when an admin exists already."""
        check_name(name)
        with self.db.scope() as session:
            if UserRepository(session).count_admins() > 0:
                return None
            return self._create(session, name, Role.ADMIN, actor, bootstrap=True)

    def _create(
        self, session: Session, name: str, role: Role, actor: Actor, *, bootstrap: bool
    ) -> tuple[UserView, str]:
        repo = UserRepository(session)
        if repo.by_name(name) is not None:
            raise Conflict(f"a user named {name!r} exists already", pointer="name")
        otp = passwords.one_time_password()
        now = self.clock()
        user = User(
            id=str(uuid.uuid4()), name=name, role=role.value, password_hash=passwords.hash_password(otp),
            must_change_password=True, disabled=False, failed_logins=0, created_at=now, updated_at=now,
        )  # fmt: skip
        try:
            with session.begin_nested():
                repo.add(user)
        except sqlalchemy.exc.IntegrityError as exc:  # a concurrent create of the same name won the race
            raise Conflict(f"a user named {name!r} exists already", pointer="name") from exc
        self._audit(session, actor, "user.created", name, role=role.value, bootstrap=bootstrap or None)
        return _view(user), otp

    def set_password(self, name: str, password: str, actor: Actor, *, must_change: bool = False) -> UserView:
        """Set a user's password (an operator's action): clears a lockout and revokes all their tokens."""
        check_new_password(password, pointer="password")
        with self.db.scope() as session:
            repo = UserRepository(session)
            user = self._get(repo, name, for_update=True)
            user.password_hash = passwords.hash_password(password)
            user.must_change_password = must_change
            user.failed_logins, user.locked_until = 0, None
            user.updated_at = self.clock()
            revoked = repo.delete_tokens(user.id)
            self._audit(session, actor, "user.password_set", name, must_change=must_change, tokens_revoked=revoked)
            return _view(user)

    def set_disabled(self, name: str, disabled: bool, actor: Actor) -> UserView:
        """Disable (and sign out everywhere) or enable a user. The last enabled admin cannot be disabled."""
        with self.db.scope() as session:
            repo = UserRepository(session)
            user = self._get(repo, name, for_update=True)
            if user.disabled == disabled:
                return _view(user)
            if disabled and user.role == Role.ADMIN and repo.count_admins(enabled_only=True) <= 1:
                raise Conflict(f"{name!r} is the last enabled admin: create or enable another admin first")
            user.disabled = disabled
            user.updated_at = self.clock()
            revoked = repo.delete_tokens(user.id) if disabled else 0
            action = "user.disabled" if disabled else "user.enabled"
            self._audit(session, actor, action, name, tokens_revoked=revoked or None)
            return _view(user)

    # ---- sign-in -----------------------------------------------------------------------------------------------

    def sign_in(self, name: str, password: str, actor: Actor) -> SignIn:
        """Check the password and open a session (a new token).

        The scrypt work runs outside any transaction (on SQLite a write transaction holds the database's write
        lock); the outcome is then recorded in one short write transaction, which re-reads the user.

        Raises:
            Unauthenticated: the same for an unknown name, a wrong password, a disabled or locked account. The
                failed attempt is audited (that audit event is committed although this raises).
        """
        with self.db.scope(write=False) as session:
            seen = UserRepository(session).by_name(name) if len(name) <= MAX_NAME else None
            seen_id, seen_hash = (seen.id, seen.password_hash) if seen is not None else (None, None)
            locked = seen is not None and seen.locked_until is not None and seen.locked_until > self.clock()
        if seen_hash is None or locked:
            passwords.burn_time(password)
            password_ok = False
        else:
            password_ok = passwords.verify_password(password, seen_hash)
        with self.db.scope() as session:
            repo = UserRepository(session)
            user = repo.get(seen_id, for_update=True) if seen_id is not None else None
            if user is None:
                reason = "unknown-user"
            elif locked:
                reason = "locked"
            elif not password_ok:
                reason = "bad-password"
            elif user.disabled:
                reason = "disabled"
            elif user.password_hash != seen_hash:
                reason = "password-changed-meanwhile"
            else:
                return self._open_session(session, repo, user, password, actor)
            self._failed(session, user, name, reason, actor)
        raise Unauthenticated(BAD_LOGIN)

    def _failed(self, session: Session, user: User | None, name: str, reason: str, actor: Actor) -> None:
        """Audit a failed sign-in and count a wrong password (locking the account after too many)."""
        detail: dict[str, Any] = {"reason": reason}
        if user is not None and reason == "bad-password":
            user.failed_logins += 1
            detail["failed_logins"] = user.failed_logins
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked_until = self.clock() + LOCKOUT
                user.failed_logins = 0
                detail["locked_until"] = user.locked_until.isoformat()
        self._audit(session, actor, "user.login_failed", name[:MAX_NAME], **detail)

    def _open_session(self, session: Session, repo: UserRepository, user: User, password: str, actor: Actor) -> SignIn:
        now = self.clock()
        user.failed_logins, user.locked_until = 0, None
        if passwords.needs_rehash(user.password_hash):  # the scrypt parameters were raised since it was set
            user.password_hash = passwords.hash_password(password)
        repo.delete_expired_tokens(now)
        token = passwords.new_token()
        row = repo.add_token(
            ApiToken(
                id=str(uuid.uuid4()), user_id=user.id, token_sha256=passwords.token_digest(token), created_at=now,
                expires_at=now + TOKEN_LIFETIME, last_used_at=now,
            )
        )  # fmt: skip
        principal = self._principal(user, row)
        self._audit(session, principal.actor(actor.request_id), "user.login", user.name,
                    must_change_password=user.must_change_password or None)  # fmt: skip
        return SignIn(principal, token)

    def resolve(self, token: str) -> Principal:
        """The signed-in user behind ``token``.

        Raises:
            Unauthenticated: unknown, expired or revoked token, or a disabled user.
        """
        digest = passwords.token_digest(token)
        now = self.clock()
        with self.db.scope(write=False) as session:
            found = UserRepository(session).token_with_user(digest)
            if found is None:
                raise Unauthenticated("not signed in: the token is unknown, expired or revoked")
            row, user = found
            if row.expires_at <= now or user.disabled:
                raise Unauthenticated("not signed in: the token is unknown, expired or revoked")
            principal = self._principal(user, row)
            stale = row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY
        if stale:
            with self.db.scope() as session:
                UserRepository(session).touch_token(row.id, now)
        return principal

    def sign_out(self, principal: Principal, actor: Actor) -> None:
        with self.db.scope() as session:
            UserRepository(session).delete_token(principal.token_id)
            self._audit(session, actor, "user.logout", principal.name)

    def change_password(self, principal: Principal, current: str, new: str, actor: Actor) -> Principal:
        """Change one's own password (the way out of a one-time password); other sessions are signed out.

        Raises:
            InvalidInput: the current password is wrong (``pointer`` current_password), or the new one is not
                acceptable or equals the current one.
        """
        check_new_password(new)
        with self.db.scope() as session:
            repo = UserRepository(session)
            user = repo.get(principal.user_id)
            if user is None or user.disabled:
                raise Unauthenticated("not signed in: the token is unknown, expired or revoked")
            current_ok = passwords.verify_password(current, user.password_hash)
            if current_ok and current == new:
                raise InvalidInput("the new password must differ from the current one", pointer="new_password")
            if current_ok:
                user.password_hash = passwords.hash_password(new)
                user.must_change_password = False
                user.updated_at = self.clock()
                revoked = repo.delete_tokens(user.id, keep=principal.token_id)
                self._audit(session, actor, "user.password_changed", user.name, tokens_revoked=revoked or None)
                return Principal(
                    user_id=user.id, name=user.name, role=user.role, must_change_password=False,
                    token_id=principal.token_id, expires_at=principal.expires_at,
                )  # fmt: skip
            self._audit(session, actor, "user.password_change_failed", user.name, reason="bad-password")
        raise InvalidInput("the current password is wrong", pointer="current_password")

    # ---- helpers -----------------------------------------------------------------------------------------------

    @staticmethod
    def _principal(user: User, token: ApiToken) -> Principal:
        return Principal(
            user_id=user.id, name=user.name, role=user.role, must_change_password=user.must_change_password,
            token_id=token.id, expires_at=token.expires_at,
        )  # fmt: skip

    @staticmethod
    def _get(repo: UserRepository, name: str, *, for_update: bool = False) -> User:
        user = repo.by_name(name, for_update=for_update)
        if user is None:
            raise NotFound(f"no user named {name[:80]!r}", pointer="name")
        return user

    @staticmethod
    def _audit(session: Session, actor: Actor, action: str, name: str, **detail: Any) -> None:
        AuditRepository(session).record(
            actor=actor.name, action=action, subject_type="user", subject_id=name[:64], request_id=actor.request_id,
            job_id=actor.job_id, detail={k: v for k, v in detail.items() if v is not None},
        )  # fmt: skip
