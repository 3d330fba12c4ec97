"""
Integration tests of L{twisted_net.client.tcp} against the real server in the
test reactor, over loopback sockets (IPv4, and IPv6 where C{::1} works).
"""

from __future__ import annotations

import socket
from collections.abc import Generator
from typing import Any

import pytest
import pytest_twisted
from support import needs_ipv6
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater

from twisted_net.client.tcp import (
    ReplyTimeoutError,
    ServerClosedError,
    ServerRefusedError,
    greet,
    greet_udp,
)
from twisted_net.config import ServerConfig
from twisted_net.server.datagram import GreetingDatagramProtocol
from twisted_net.server.factory import GreetingFactory

TIMEOUT = 5.0
NAMES = [b"Michael", b"Tracy", b"Sarah"]
EXPECTED = [b"Welcome!", b"Hello, Michael!", b"Hello, Tracy!", b"Hello, Sarah!"]


FAMILIES = [
    pytest.param("127.0.0.1", "tcp:0:interface=127.0.0.1", "tcp:127.0.0.1:{port}", id="ipv4"),
    pytest.param(
        "::1", r"tcp6:0:interface=\:\:1", r"tcp:host=\:\:1:port={port}", id="ipv6", marks=needs_ipv6
    ),
]


def listen_tcp(
    framing: str, host: str = "127.0.0.1", config: ServerConfig | None = None
) -> tuple[Any, GreetingFactory]:
    factory = GreetingFactory(framing, config or ServerConfig(), clock=reactor)
    port = reactor.listenTCP(0, factory, interface=host)  # type: ignore[attr-defined]
    return port, factory


def awaited(deferred: Deferred[Any]) -> Deferred[Any]:
    return deferred.addTimeout(TIMEOUT, reactor)  # type: ignore[arg-type]


@pytest_twisted.inlineCallbacks
def _greet_through(
    framing: str,
    host: str,
    endpoint_template: str,
    names: list[bytes],
    config: ServerConfig | None = None,
) -> Generator[Deferred[Any], Any, list[bytes]]:
    port, _ = listen_tcp(framing, host, config)
    try:
        endpoint = clientFromString(reactor, endpoint_template.format(port=port.getHost().port))
        replies = yield awaited(greet(reactor, endpoint, names, framing, timeout=TIMEOUT))
    finally:
        yield port.stopListening()
    return replies  # type: ignore[no-any-return]


@pytest.mark.parametrize("framing", ["seed", "line"])
@pytest.mark.parametrize(("host", "listen", "connect"), FAMILIES)
@pytest_twisted.inlineCallbacks
def test_greet_tcp(
    framing: str, host: str, listen: str, connect: str
) -> Generator[Deferred[Any], Any, None]:
    """
    The tutorial's conversation, over IPv4 and IPv6, in both framings.
    """
    replies = yield _greet_through(framing, host, connect, NAMES)
    assert replies == EXPECTED


@pytest_twisted.inlineCallbacks
def test_greet_seed_with_server_delay() -> None:  # type: ignore[misc]
    """
    With the tutorial's reply delay, the seed client still waits for each
    reply before the next message (otherwise two messages would be one).
    """
    config = ServerConfig(delay=0.05)
    replies = yield _greet_through("seed", "127.0.0.1", "tcp:127.0.0.1:{port}", NAMES, config)
    assert replies == EXPECTED


@pytest_twisted.inlineCallbacks
def test_greet_line_many_pipelined() -> None:  # type: ignore[misc]
    names = [b"n%d" % (index,) for index in range(500)]
    replies = yield _greet_through("line", "127.0.0.1", "tcp:127.0.0.1:{port}", names)
    assert replies == [b"Welcome!"] + [b"Hello, " + name + b"!" for name in names]


@pytest_twisted.inlineCallbacks
def test_greet_oversize_message_reports_server_error() -> None:  # type: ignore[misc]
    config = ServerConfig(max_message=10)
    with pytest.raises(ServerRefusedError, match="message longer than 10 bytes"):
        yield _greet_through("seed", "127.0.0.1", "tcp:127.0.0.1:{port}", [b"x" * 11], config)


@pytest_twisted.inlineCallbacks
def test_greet_server_busy() -> None:  # type: ignore[misc]
    """
    A server at its connection cap answers C{error: server busy} instead of
    the greeting.
    """
    port, factory = listen_tcp("seed", config=ServerConfig(max_connections=1))
    holder = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        endpoint = clientFromString(reactor, f"tcp:127.0.0.1:{port.getHost().port}")
        for _ in range(500):
            if factory.sessions:
                break
            yield deferLater(reactor, 0.01)
        with pytest.raises(ServerRefusedError, match="server busy"):
            yield awaited(greet(reactor, endpoint, NAMES, timeout=TIMEOUT))
    finally:
        holder.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_greet_connection_refused() -> None:  # type: ignore[misc]
    from twisted.internet.error import ConnectionRefusedError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    endpoint = clientFromString(reactor, f"tcp:127.0.0.1:{free}")
    with pytest.raises(ConnectionRefusedError):
        yield awaited(greet(reactor, endpoint, NAMES, timeout=TIMEOUT))


@pytest_twisted.inlineCallbacks
def test_greet_server_that_closes_at_once() -> None:  # type: ignore[misc]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    endpoint = clientFromString(reactor, f"tcp:127.0.0.1:{listener.getsockname()[1]}")
    outcome = greet(reactor, endpoint, NAMES, timeout=TIMEOUT)
    accepted = None
    for _ in range(200):
        try:
            accepted, _ = listener.accept()
            break
        except BlockingIOError:
            yield deferLater(reactor, 0.01)
    assert accepted is not None
    accepted.close()
    listener.close()
    with pytest.raises(ServerClosedError, match="before its greeting"):
        yield awaited(outcome)


# UDP ---------------------------------------------------------------------------------


class DropFirst(DatagramProtocol):
    """
    A UDP greeting server that loses the first C{drop} datagrams it gets.
    """

    def __init__(self, drop: int) -> None:
        self.drop = drop
        self.seen: list[bytes] = []
        self.server = GreetingDatagramProtocol(ServerConfig(), clock=reactor)

    def startProtocol(self) -> None:
        self.server.transport = self.transport

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.seen.append(datagram)
        if len(self.seen) <= self.drop:
            return
        self.server.datagramReceived(datagram, addr)


def listen_udp(protocol: DatagramProtocol, host: str = "127.0.0.1") -> Any:
    return reactor.listenUDP(0, protocol, interface=host)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "host", [pytest.param("127.0.0.1", id="ipv4"), pytest.param("::1", id="ipv6", marks=needs_ipv6)]
)
@pytest_twisted.inlineCallbacks
def test_greet_udp(host: str) -> Generator[Deferred[Any], Any, None]:
    port = listen_udp(GreetingDatagramProtocol(ServerConfig(), clock=reactor), host)
    try:
        replies = yield awaited(
            greet_udp(reactor, host, port.getHost().port, NAMES, timeout=1.0, retries=0)
        )
    finally:
        yield port.stopListening()
    assert replies == EXPECTED[1:]


@pytest_twisted.inlineCallbacks
def test_greet_udp_retries_a_lost_datagram() -> None:  # type: ignore[misc]
    """
    The first datagram is lost; the client asks again after its timeout
    and gets every reply.
    """
    server = DropFirst(1)
    port = listen_udp(server)
    try:
        replies = yield awaited(
            greet_udp(reactor, "127.0.0.1", port.getHost().port, NAMES, timeout=0.2, retries=1)
        )
    finally:
        yield port.stopListening()
    assert replies == EXPECTED[1:]
    assert server.seen == [b"Michael", b"Michael", b"Tracy", b"Sarah"]


@pytest_twisted.inlineCallbacks
def test_greet_udp_gives_up_after_retries() -> None:  # type: ignore[misc]
    server = DropFirst(1000)
    port = listen_udp(server)
    try:
        with pytest.raises(ReplyTimeoutError, match="after 3 attempt"):
            yield awaited(
                greet_udp(reactor, "127.0.0.1", port.getHost().port, NAMES, timeout=0.1, retries=2)
            )
    finally:
        yield port.stopListening()
    assert server.seen == [b"Michael"] * 3 + [b"Tracy"] * 3 + [b"Sarah"] * 3


@pytest_twisted.inlineCallbacks
def test_greet_udp_ignores_other_senders() -> None:  # type: ignore[misc]
    """
    The right reply from another port (a forger) does not count: the server
    itself never answers, so the client gives up.
    """

    class AnsweredByForger(DatagramProtocol):
        def datagramReceived(self, datagram: bytes, addr: Any) -> None:
            forger.write(b"Hello, " + datagram + b"!", addr)

    forger = listen_udp(DatagramProtocol())
    port = listen_udp(AnsweredByForger())
    shown: list[bytes] = []
    try:
        with pytest.raises(ReplyTimeoutError):
            yield awaited(
                greet_udp(
                    reactor,
                    "127.0.0.1",
                    port.getHost().port,
                    [b"a"],
                    timeout=0.2,
                    retries=1,
                    on_message=shown.append,
                )
            )
    finally:
        yield port.stopListening()
        yield forger.stopListening()
    assert shown == []
