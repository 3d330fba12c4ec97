"""
Accepting connections without the per-call work of C{socket.accept} (see
docs/PERFORMANCE.md, section "The netepoll reactor", Accepting).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

__all__ = ["accepter"]


def accepter(listener: socket.socket) -> Callable[[], tuple[socket.socket, Any]]:
    """
    A function that accepts one connection from C{listener}, as its
    C{accept} method does, minus the work that method repeats on every call
    (converting the listener's family and type to enums): here they are
    looked up once.  Errors are C{accept}'s own.

    @param listener: a listening, non-blocking socket (a blocking one gets
        its plain C{accept}, which also makes the new socket blocking).
    """
    raw = getattr(listener, "_accept", None)
    if raw is None or type(listener) is not socket.socket or listener.gettimeout() != 0.0:
        return listener.accept
    family, kind, proto = int(listener.family), int(listener.type), listener.proto
    make = socket.socket

    def accept() -> tuple[socket.socket, Any]:
        fd, address = raw()
        return make(family, kind, proto, fileno=fd), address

    return accept
