"""Interfaces the services need from the outside, implemented by the edges (the worker package provides them)."""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    """Where jobs go. Implementations must be safe to call after a commit, from any thread."""

    def send_translation(self, translation_id: str) -> str:
        """Enqueue the translation job; returns the message id."""
        ...

    def ping(self) -> None:
        """Raise ServiceUnavailable unless the queue is reachable."""
        ...
