"""Strict MAJOR.MINOR.PATCH versions with numeric ordering (no pre-release or build suffixes, no leading zeros)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sigforge.errors import InvalidInput

_VERSION = re.compile(r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """A parsed version; compares numerically (1.10.0 > 1.9.0)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``MAJOR.MINOR.PATCH``.

        Raises:
            InvalidInput: anything else (``v1.2.3``, ``1.2``, ``01.2.3``, ``1.2.3-rc1``).
        """
        match = _VERSION.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput(f"not a version (expected MAJOR.MINOR.PATCH, e.g. 1.4.0): {text!r}")
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)))

    @staticmethod
    def is_valid(text: str) -> bool:
        return isinstance(text, str) and _VERSION.match(text) is not None

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"
