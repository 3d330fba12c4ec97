"""
L{twisted_net.netepoll.accept.accepter} on real loopback sockets: it gives
what C{socket.accept} gives.
"""

from __future__ import annotations

import socket

import pytest

from twisted_net.netepoll.accept import accepter

LOOPBACK = "127.0.0.1"


# accepter on real sockets ------------------------------------------------------


def test_accepter_gives_what_accept_gives() -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(5)
        listener.setblocking(False)
        accept = accepter(listener)
        with pytest.raises(BlockingIOError):
            accept()
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            accepted, address = accept()
            with accepted:
                assert address == client.getsockname()
                assert accepted.family == socket.AF_INET
                assert accepted.type == socket.SOCK_STREAM
                assert accepted.getpeername() == client.getsockname()
                accepted.sendall(b"Welcome!")
                assert client.recv(100) == b"Welcome!"


def test_accepter_keeps_a_blocking_listener_to_its_own_accept() -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(5)
        assert accepter(listener) == listener.accept
