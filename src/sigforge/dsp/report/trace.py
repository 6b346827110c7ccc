"""Source-line traceability (pure): map ``[src:N]`` tokens in generated C back to Python source lines.

Invariants:
    * Only generated C sources and headers (``*.c``, ``*.h``) are scanned; the token is ``[src:N]`` with N the
      1-based line of the user's Python source, and every occurrence counts (a line may hold several tokens).
    * The result is deterministic: entries sorted by source line, locations by (file, line), no duplicates.
    * Files that are not UTF-8 are read with replacement characters (the tokens are ASCII), never skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

TOKEN = re.compile(r"\[src:(\d+)\]")
SCANNED_SUFFIXES = (".c", ".h")


def traceability(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """``[{"source_line": N, "generated": [{"file": F, "line": L}, ...]}, ...]`` for the ``[src:N]`` tokens."""
    found: dict[int, set[tuple[str, int]]] = {}
    for name in sorted(files):
        if not name.endswith(SCANNED_SUFFIXES):
            continue
        text = files[name].decode("utf-8", errors="replace")
        for lineno, line in enumerate(text.split("\n"), start=1):
            for match in TOKEN.finditer(line):
                found.setdefault(int(match.group(1)), set()).add((name, lineno))
    return [
        {"source_line": src, "generated": [{"file": f, "line": ln} for f, ln in sorted(found[src])]}
        for src in sorted(found)
    ]
