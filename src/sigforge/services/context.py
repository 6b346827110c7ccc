"""Who is acting, carried into every audit event a service writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal behind an action, as the audit log names it.

    ``name`` is the signed-in user's name when a person is known (an API call with a token), else the channel:
    ``api``, ``cli``, ``worker`` or ``system``. No user may take a channel's name (``services.users.RESERVED_NAMES``).
    """

    name: str
    request_id: str | None = None
    job_id: str | None = None
