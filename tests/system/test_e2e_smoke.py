"""
End to end: the installed C{twist net} answers the tutorial's own clients.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from support import RunningServer

LOOPBACK = "127.0.0.1"


def test_tutorial_tcp_session(twist_net: Callable[..., RunningServer]) -> None:
    """
    A tutorial-style raw socket client: greeting, three names without line
    endings, each answered, then C{exit} closes the connection.
    """
    server = twist_net(["--listen", f"tcp:0:interface={LOOPBACK}", "--udp", f"{LOOPBACK}:0"])
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as s:
        assert s.recv(1024) == b"Welcome!"
        for name in [b"Michael", b"Tracy", b"Sarah"]:
            s.send(name)
            assert s.recv(1024) == b"Hello, " + name + b"!"
        s.send(b"exit")
        assert s.recv(1024) == b""
    assert server.stop() in (0, -15)


def test_tutorial_udp_client_unchanged(twist_net: Callable[..., RunningServer]) -> None:
    """
    The tutorial's UDP client code, as written, against the server.
    """
    server = twist_net(["--listen", f"tcp:0:interface={LOOPBACK}", "--udp", f"{LOOPBACK}:0"])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    replies = []
    for data in [b"Michael", b"Tracy", b"Sarah"]:
        s.sendto(data, (LOOPBACK, server.udp_port))
        replies.append(s.recv(1024).decode("utf-8"))
    s.close()
    assert replies == ["Hello, Michael!", "Hello, Tracy!", "Hello, Sarah!"]
