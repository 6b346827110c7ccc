"""The suite's network guard is real: a non-loopback connection fails here and in Python children."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import _netguard
from support import child_env

# TEST-NET-1 (RFC 5737): documentation-only addresses. The guard raises before any packet could leave.
UNROUTABLE = ("192.0.2.1", 9)


def test_guard_blocks_non_loopback_in_the_test_process() -> None:
    with pytest.raises(_netguard.OutboundConnectionBlocked), socket.socket() as s:
        s.connect(UNROUTABLE)
    with pytest.raises(_netguard.OutboundConnectionBlocked), socket.socket() as s:
        s.connect_ex(UNROUTABLE)
    with pytest.raises(_netguard.OutboundConnectionBlocked):
        socket.create_connection(UNROUTABLE, timeout=1)


def test_guard_allows_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


def test_guard_is_installed_in_python_children() -> None:
    code = (
        "import socket, sys\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 9), timeout=1)\n"
        "except AssertionError as e:\n"
        "    print('blocked:', e); sys.exit(0)\n"
        "except OSError as e:\n"
        "    print('not guarded:', e); sys.exit(1)\n"
        "sys.exit(2)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "blocked" in result.stdout
