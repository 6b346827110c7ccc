"""Fail any connection to a non-loopback address.

Installed in the pytest process by ``conftest.py`` and in every Python child process the tests start (through
``tests/_sitecustomize/sitecustomize.py`` on ``PYTHONPATH``), so "the appliance never opens an outbound connection"
is enforced for the whole suite, not assumed.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_installed = False


class OutboundConnectionBlocked(AssertionError):
    """A test (or the code under test) tried to reach a non-loopback address."""


def _is_local(address: Any, family: int) -> bool:
    if family == getattr(socket, "AF_UNIX", None):
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        # A host name: resolve it without connecting and require every answer to be loopback.
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def install() -> None:
    """Patch socket.connect/connect_ex once; idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_local(address, self.family):
            raise OutboundConnectionBlocked(f"outbound connection to {address!r} blocked by the test network guard")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_local(address, self.family):
            raise OutboundConnectionBlocked(f"outbound connection to {address!r} blocked by the test network guard")
        return real_connect_ex(self, address)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
