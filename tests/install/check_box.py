"""Run INSIDE the installed box's network namespace by test_install.py: probe /readyz, post a translation through the
API and wait until it is verified, then print one JSON line with what was seen (the test asserts on it).

    python check_box.py PORT SOURCE.py [ADMIN_ONE_TIME_PASSWORD]
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def http(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


def main() -> int:
    base = f"http://127.0.0.1:{sys.argv[1]}"
    source = open(sys.argv[2]).read()
    seen: dict[str, Any] = {"interfaces": sorted(name for _, name in socket.if_nameindex())}  # this namespace's
    status, _, headers = http(f"{base}/readyz")
    seen["readyz"] = status
    seen["version"] = headers.get("x-sigforge-version")
    status, body, _ = http(
        f"{base}/api/v1/translations",
        {"source": source, "target": "host-c", "input_dtype": "float32", "frame_length": 256},
    )
    seen["created"] = status
    if status == 201:
        tid = body["id"]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = http(f"{base}/api/v1/translations/{tid}")[1]
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        seen["status"] = state["status"]
        report_status, report, _ = http(f"{base}/api/v1/translations/{tid}/report")
        seen["report"] = {
            "http": report_status,
            "verified": report.get("verified") if report_status == 200 else None,
            "toolchain": report.get("toolchain") if report_status == 200 else None,
        }
    else:
        seen["error"] = body
    if len(sys.argv) > 3:  # the first admin signs in with the one-time password install.sh printed
        status, body, _ = http(f"{base}/api/v1/session", {"name": "admin", "password": sys.argv[3]})
        seen["admin"] = {"status": status} | (
            {k: body[k] for k in ("name", "role", "must_change_password")} if status == 201 else {"error": body}
        )
    print("CHECK " + json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
