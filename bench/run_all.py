"""Run every benchmark and record its table in docs/benchmarks.md (between its markers), with date and machine.

Each benchmark measures its own baseline in the same run and reports a ratio; absolute numbers drift between runs
and machines, ratios are what to compare.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
BENCHES = {
    "translator": ["bench/bench_translator.py"],
    "translator-cold": ["bench/bench_translator.py", "--cold-output"],
    "fft": ["bench/bench_fft.py"],
    "broker": ["bench/bench_broker.py"],
    "toolchains": ["bench/bench_toolchains.py"],
    "frozen": ["bench/bench_frozen.py"],
    "lifecycle": ["bench/bench_lifecycle.py"],
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> int:
    doc = DOC.read_text()
    only = set(sys.argv[1:])
    for name, argv in BENCHES.items():
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        result = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            return result.returncode
        print(result.stdout)
        stamp = f"_Measured {dt.date.today().isoformat()} on {machine()} (`make bench`)._"
        block = f"<!-- bench:{name} -->\n{stamp}\n\n{result.stdout.strip()}\n<!-- /bench:{name} -->"
        pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
        if not pattern.search(doc):
            raise SystemExit(f"docs/benchmarks.md has no markers for {name}")
        doc = pattern.sub(lambda _match, text=block: text, doc)
    DOC.write_text(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
