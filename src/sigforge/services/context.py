"""Who is acting, carried into every audit event a service writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal behind an action: ``api``, ``cli``, ``worker`` or ``system`` (users arrive with auth)."""

    name: str
    request_id: str | None = None
    job_id: str | None = None
