"""
End-to-end: the installed C{twist net} writes its log in batches
(L{twisted_net.logoutput}).  Its lines still arrive while the connection they
describe is open, none is lost at shutdown, and a SIGTERM that lands while
the server is logging under load still stops it (Twisted logs from its signal
handler, which can interrupt a batch being written).

Bounded: 3 rounds of at most 2 s of load from 4 clients, on 127.0.0.1.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from typing import Any

LOOPBACK = "127.0.0.1"
LISTEN = ["--listen", f"tcp:0:interface={LOOPBACK}", "--no-udp", "--max-per-peer", "0"]


def events_named(server: Any, name: str) -> list[dict[str, Any]]:
    return [event for event in list(server.events) if event.get("event") == name]


def test_a_connection_is_logged_while_it_is_open(twist_net: Any) -> None:
    """
    The C{connection_opened} line of a connection is out while the client
    still holds the connection, without any further traffic.
    """
    server = twist_net(LISTEN)
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as client:
        assert client.recv(8) == b"Welcome!"
        peer = "{}:{}".format(*client.getsockname())
        event = server.wait_for(
            lambda e: e.get("event") == "connection_opened" and e.get("peer") == peer,
            timeout=5,
        )
        assert event["peer"] == peer


def churn(port: int, until: float, sessions: list[int]) -> None:
    """Connect, greet, C{exit}, again, until C{until}; count the sessions."""
    while time.monotonic() < until:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=2) as client:
                if client.recv(8) == b"Welcome!":
                    sessions.append(1)
                client.sendall(b"exit")
                client.recv(100)
        except OSError:
            pass


def test_sigterm_under_logging_load_stops_with_every_line_out(twist_net: Any) -> None:
    """
    SIGTERM while four clients churn (two log lines a connection) stops the
    server with status -15 (C{twist} re-raises the signal), and every
    connection it greeted has its C{connection_opened} line.
    """
    for round_ in range(3):
        server = twist_net(LISTEN)
        sessions: list[int] = []
        until = time.monotonic() + 2.0
        clients = [
            threading.Thread(target=churn, args=(server.tcp_port, until, sessions))
            for _ in range(4)
        ]
        for client in clients:
            client.start()
        time.sleep(0.3 + 0.1 * round_)
        code = server.stop(signal.SIGTERM, timeout=10)
        for client in clients:
            client.join(5)
        assert code == -signal.SIGTERM
        assert sessions, "no client was greeted"
        assert len(events_named(server, "connection_opened")) >= len(sessions)
        assert events_named(server, "stopped")
