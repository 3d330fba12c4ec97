"""
Integration tests: the whole service in the test reactor, spoken to over
real loopback sockets (IPv4, and IPv6 where C{::1} is bindable).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Generator
from typing import Any

import pytest
import pytest_twisted
from support import needs_ipv6
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue, gatherResults, inlineCallbacks
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    connectProtocol,
)
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from twisted_net.config import ServerConfig
from twisted_net.server.service import DatagramListener, NetService, StreamListener
from twisted_net.tap import build_service

TIMEOUT = 5.0


FAMILIES = [
    pytest.param("127.0.0.1", "tcp:0:interface=127.0.0.1", id="ipv4"),
    pytest.param("::1", r"tcp6:0:interface=\:\:1", id="ipv6", marks=needs_ipv6),
]


class Client(Protocol):
    """
    A TCP client that records what it receives and when the server closes.
    """

    def __init__(self) -> None:
        self.data = b""
        self.closed: Deferred[bytes] = Deferred()
        self._waiting: list[tuple[int, Deferred[bytes]]] = []

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        ready = [(size, d) for size, d in self._waiting if len(self.data) >= size]
        self._waiting = [(size, d) for size, d in self._waiting if len(self.data) < size]
        for _, waiter in ready:
            waiter.callback(self.data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        for _, waiter in self._waiting:
            waiter.errback(AssertionError(f"closed after only {self.data!r}"))
        self._waiting = []
        self.closed.callback(self.data)

    def received(self, size: int) -> Deferred[bytes]:
        """
        Fire with everything received once at least C{size} bytes are in.
        """
        if len(self.data) >= size:
            waiter: Deferred[bytes] = Deferred()
            waiter.callback(self.data)
            return waiter
        waiter = Deferred()
        self._waiting.append((size, waiter))
        return waiter.addTimeout(TIMEOUT, reactor)

    def until_closed(self) -> Deferred[bytes]:
        return self.closed.addTimeout(TIMEOUT, reactor)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        assert self.transport is not None
        self.transport.loseConnection()


class UDPClient(DatagramProtocol):
    def __init__(self) -> None:
        self.received: DeferredQueue[bytes] = DeferredQueue()

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.put(datagram)


def serve(
    config: ServerConfig, framing: str, listen: list[str], udp: list[tuple[str, int]] | None = None
) -> NetService:
    service = build_service(config, framing, listen, udp or [], reactor=reactor)
    service.startService()
    return service


def tcp_port(service: NetService, index: int = 0) -> int:
    listeners = [child for child in service if isinstance(child, StreamListener)]
    port = listeners[index].port
    assert port is not None
    return int(port.getHost().port)  # type: ignore[attr-defined]


def udp_port(service: NetService, index: int = 0) -> int:
    listeners = [child for child in service if isinstance(child, DatagramListener)]
    return int(listeners[index].port.getHost().port)


def connect(host: str, port: int) -> Deferred[Client]:
    endpoint = (TCP6ClientEndpoint if ":" in host else TCP4ClientEndpoint)(reactor, host, port)
    connected: Deferred[Client] = connectProtocol(endpoint, Client())  # type: ignore[no-untyped-call]
    return connected.addTimeout(TIMEOUT, reactor)


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize(("host", "listen"), FAMILIES)
def test_seed_tutorial_session(host: str, listen: str) -> Generator[Any, Any, None]:
    """
    The tutorial's session over a real socket: greeting, one reply per
    message, C{exit} closes.
    """
    service = serve(ServerConfig(), "seed", [listen])
    try:
        client = yield connect(host, tcp_port(service))
        expected = b"Welcome!"
        assert (yield client.received(len(expected))) == expected
        for name in [b"Michael", b"Tracy", b"\xff\x00"]:
            client.send(name)
            expected += b"Hello, " + name + b"!"
            assert (yield client.received(len(expected))) == expected
        client.send(b"exit")
        assert (yield client.until_closed()) == expected
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize(("host", "listen"), FAMILIES)
def test_line_pipelined_session(host: str, listen: str) -> Generator[Any, Any, None]:
    """
    C{line} framing: a whole pipelined session in one write, C{exit}
    included, gets every reply and then the close.
    """
    service = serve(ServerConfig(), "line", [listen])
    try:
        client = yield connect(host, tcp_port(service))
        client.send(b"Michael\r\nTracy\nSar")
        client.send(b"ah\r\nexit\r\nnever\n")
        assert (yield client.until_closed()) == (
            b"Welcome!\r\nHello, Michael!\r\nHello, Tracy!\r\nHello, Sarah!\r\n"
        )
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_line_bytes_one_at_a_time() -> Generator[Any, Any, None]:
    """
    C{line} framing over a real socket, one byte per packet: the replies
    are the same as when the session arrives in one piece.
    """
    service = serve(ServerConfig(), "line", ["tcp:0:interface=127.0.0.1"])
    try:
        client = yield connect("127.0.0.1", tcp_port(service))
        client.transport.setTcpNoDelay(True)
        for byte in b"Michael\r\nTr\xffcy\nexit\r\n":
            client.send(bytes([byte]))
            yield deferLater(reactor, 0.002, lambda: None)
        assert (yield client.until_closed()) == (
            b"Welcome!\r\nHello, Michael!\r\nHello, Tr\xffcy!\r\n"
        )
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_half_close_answers_everything() -> Generator[Any, Any, None]:
    """
    A client that shuts down its sending side still gets every reply
    (its last line without a line feed too), then the close.
    """
    service = serve(ServerConfig(delay=0.1), "line", ["tcp:0:interface=127.0.0.1"])
    try:
        client = yield connect("127.0.0.1", tcp_port(service))
        client.send(b"a\nb")
        client.transport.loseWriteConnection()
        assert (yield client.until_closed()) == b"Welcome!\r\nHello, a!\r\nHello, b!\r\n"
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_one_slow_reply_holds_up_no_other_connection() -> Generator[Any, Any, None]:
    """
    With C{--delay 0.5}, five clients talking at once are all answered
    about 0.5 s later, not one after the other (the tutorial's C{sleep}
    would take 2.5 s); each connection's replies keep their order.
    """
    delay = 0.5
    service = serve(ServerConfig(delay=delay), "line", ["tcp:0:interface=127.0.0.1"])
    port = tcp_port(service)
    clients: list[Client] = []
    try:
        for _ in range(5):
            clients.append((yield connect("127.0.0.1", port)))
        greeting = b"Welcome!\r\n"
        yield gatherResults([client.received(len(greeting)) for client in clients])
        started = time.monotonic()
        for index, client in enumerate(clients):
            client.send(b"first%d\n" % index)
        yield deferLater(reactor, 0.1, lambda: None)
        for index, client in enumerate(clients):
            client.send(b"second%d\n" % index)
        expected = [
            greeting + b"Hello, first%d!\r\nHello, second%d!\r\n" % (index, index)
            for index in range(len(clients))
        ]
        received = yield gatherResults(
            [client.received(len(want)) for client, want in zip(clients, expected, strict=True)]
        )
        elapsed = time.monotonic() - started
        assert received == expected
        assert delay + 0.1 <= elapsed + 0.02
        assert elapsed < 2 * delay, f"replies took {elapsed:.2f}s: serialised?"
    finally:
        for client in clients:
            client.close()
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_delay_replies_in_order_on_one_connection() -> Generator[Any, Any, None]:
    """
    Messages sent at different times on one connection are answered in
    order, each about C{delay} after it was sent.
    """
    service = serve(ServerConfig(delay=0.3), "seed", ["tcp:0:interface=127.0.0.1"])
    try:
        client = yield connect("127.0.0.1", tcp_port(service))
        yield client.received(len(b"Welcome!"))
        started = time.monotonic()
        client.send(b"one\n")
        yield deferLater(reactor, 0.15, lambda: None)
        client.send(b"two\n")
        first = yield client.received(len(b"Welcome!Hello, one!\n"))
        first_at = time.monotonic() - started
        assert first == b"Welcome!Hello, one!\n"
        both = yield client.received(len(b"Welcome!Hello, one!\nHello, two!\n"))
        second_at = time.monotonic() - started
        assert both == b"Welcome!Hello, one!\nHello, two!\n"
        assert 0.28 <= first_at < second_at
        assert second_at >= 0.43
    finally:
        client.close()
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_stop_sends_owed_replies_then_closes() -> Generator[Any, Any, None]:
    """
    Stopping the service while a delayed reply is owed: listening stops
    at once, the reply still arrives, then the connection closes.
    """
    service = serve(ServerConfig(delay=0.3), "line", ["tcp:0:interface=127.0.0.1"])
    port = tcp_port(service)
    client = yield connect("127.0.0.1", port)
    yield client.received(len(b"Welcome!\r\n"))
    client.send(b"owed\n")
    yield deferLater(reactor, 0.05, lambda: None)
    stopped = service.stopService()
    yield deferLater(reactor, 0.02, lambda: None)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert (yield client.until_closed()) == b"Welcome!\r\nHello, owed!\r\n"
    yield stopped


@inlineCallbacks
def udp_exchange(
    host: str,
    port: int,
    datagrams: list[bytes],
) -> Generator[Any, Any, list[bytes]]:
    client = UDPClient()
    listening = reactor.listenUDP(0, client, interface=host)  # type: ignore[attr-defined]
    try:
        replies = []
        for datagram in datagrams:
            client.transport.write(datagram, (host, port))  # type: ignore[union-attr]
            replies.append((yield client.received.get().addTimeout(TIMEOUT, reactor)))
    finally:
        yield listening.stopListening()
    return replies


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize(
    ("host", "udp"),
    [
        pytest.param("127.0.0.1", ("127.0.0.1", 0), id="ipv4"),
        pytest.param("::1", ("::1", 0), id="ipv6", marks=needs_ipv6),
    ],
)
def test_udp(host: str, udp: tuple[str, int]) -> Generator[Any, Any, None]:
    """
    Every datagram is answered over real IPv4 and IPv6 sockets.
    """
    service = serve(ServerConfig(), "seed", [], [udp])
    try:
        replies = yield udp_exchange(host, udp_port(service), [b"Michael", b"Tracy\r\n"])
        assert replies == [b"Hello, Michael!", b"Hello, Tracy!\r\n"]
    finally:
        yield service.stopService()


@needs_ipv6
@pytest_twisted.inlineCallbacks
def test_tcp_and_udp_on_both_families_at_once() -> Generator[Any, Any, None]:
    """
    One service listening on TCP and UDP over IPv4 and IPv6 answers on all
    four.
    """
    service = serve(
        ServerConfig(),
        "line",
        ["tcp:0:interface=127.0.0.1", r"tcp6:0:interface=\:\:1"],
        [("127.0.0.1", 0), ("::1", 0)],
    )
    try:
        for index, host in enumerate(["127.0.0.1", "::1"]):
            client = yield connect(host, tcp_port(service, index))
            client.send(b"tcp\nexit\n")
            assert (yield client.until_closed()) == b"Welcome!\r\nHello, tcp!\r\n"
            replies = yield udp_exchange(host, udp_port(service, index), [b"udp"])
            assert replies == [b"Hello, udp!"]
        assert service.factory.counters.messages_answered == 2
        assert service.factory.counters.datagrams_answered == 2
    finally:
        yield service.stopService()
