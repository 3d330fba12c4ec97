"""
The connection set-up and tear-down paths of L{twisted_net.netepoll.reactor}, on a
real L{NetReactor} (created, not installed: the test process runs
pytest-twisted's reactor) driven one C{doPoll} at a time over loopback
sockets, and the accept path's shortcuts in L{twisted_net.server.accepting} and
L{twisted_net.server.session}.

Several of these lean on Twisted's private epoll bookkeeping
(C{_poller}, C{_reads}, C{_writes}, C{_selectables}); the first test
fails if a Twisted release changes it.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any, cast

import pytest
from netepoll_fakes import FakeTransportReactor
from support import needs_ipv6
from twisted.internet import error, tcp
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from twisted_net.address import format_address
from twisted_net.config import ServerConfig
from twisted_net.netepoll.reactor import NetReactor
from twisted_net.netepoll.transport import WriteThroughServer
from twisted_net.server.accepting import GuardedPort
from twisted_net.server.counters import Counters
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.refusals import RefusalLog

LOOPBACK = "127.0.0.1"


class Recorder(Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Failure] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.lost.append(reason)


@pytest.fixture
def net_reactor() -> Iterator[NetReactor]:
    reactor = NetReactor()
    try:
        yield reactor
    finally:
        for selectable in reactor.removeAll():
            if isinstance(selectable, WriteThroughServer) and "socket" in vars(selectable):
                selectable.socket.close()
        reactor._poller.close()
        reactor.waker.connectionLost(None)  # type: ignore[attr-defined]


@pytest.fixture
def connection(
    net_reactor: NetReactor,
) -> Iterator[tuple[WriteThroughServer, socket.socket, Recorder]]:
    """
    A server transport on C{net_reactor} and the client socket it talks to.
    """
    listener = socket.create_server((LOOPBACK, 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    accepted, address = listener.accept()
    listener.close()
    protocol = Recorder()
    transport = WriteThroughServer(accepted, protocol, address, None, 1, net_reactor)
    protocol.makeConnection(transport)
    try:
        yield transport, client, protocol
    finally:
        client.close()


def in_epoll_set(reactor: NetReactor, fd: int) -> bool:
    """
    Whether the kernel's epoll set holds C{fd} (C{modify} fails with
    C{ENOENT} for a descriptor it does not hold).
    """
    try:
        reactor._poller.modify(fd, select.EPOLLIN)
    except FileNotFoundError:
        return False
    return True


def poll(reactor: NetReactor, until: Any, rounds: int = 50) -> None:
    for _ in range(rounds):
        if until():
            return
        reactor.doPoll(0.05)
    assert until()


def open_session(
    factory: GreetingFactory,
    net_reactor: NetReactor,
    transport_class: type[Any] = WriteThroughServer,
    host: str = LOOPBACK,
    family: socket.AddressFamily = socket.AF_INET,
) -> tuple[socket.socket, Any, Any]:
    """
    A real loopback connection served by C{factory}'s protocol on a
    C{transport_class} transport of C{net_reactor}.

    @return: the client socket, the protocol and the transport.
    """
    listener = socket.create_server((host, 0), family=family)
    client = socket.create_connection(listener.getsockname()[:2], timeout=5)
    accepted, address = listener.accept()
    listener.close()
    protocol = factory.buildProtocol(None)
    assert protocol is not None
    transport = transport_class(accepted, protocol, address, None, 1, net_reactor)
    protocol.makeConnection(transport)
    return client, protocol, transport


def test_twisted_bookkeeping_is_what_the_shortcuts_assume(
    connection: tuple[WriteThroughServer, socket.socket, Recorder], net_reactor: NetReactor
) -> None:
    """
    The new transport is registered exactly as C{addReader} would have
    registered it, so Twisted's own C{removeReader} undoes it.
    """
    transport, _, _ = connection
    fd = transport.fileno()
    assert isinstance(net_reactor._reads, set) and isinstance(net_reactor._writes, set)
    assert fd in net_reactor._reads and fd not in net_reactor._writes
    assert net_reactor._selectables[fd] is transport
    assert transport in net_reactor.getReaders()
    assert in_epoll_set(net_reactor, fd)
    net_reactor.removeReader(transport)
    assert fd not in net_reactor._reads and fd not in net_reactor._selectables
    assert not in_epoll_set(net_reactor, fd)


def test_close_needs_no_epoll_ctl(
    connection: tuple[WriteThroughServer, socket.socket, Recorder], net_reactor: NetReactor
) -> None:
    """
    After C{loseConnection} the reactor no longer knows the socket (reading
    stopped) though epoll still holds it; the close at the end of the
    iteration sends what was written, closes the socket and tells the
    protocol.  Data arriving meanwhile is not delivered.
    """
    transport, client, protocol = connection
    fd = transport.fileno()
    sock = transport.socket
    transport.write(b"bye")
    transport.loseConnection()
    assert fd not in net_reactor._reads and fd not in net_reactor._selectables
    assert transport not in net_reactor.getReaders()
    assert in_epoll_set(net_reactor, fd)
    client.sendall(b"ignored")
    net_reactor._flush_writes()
    assert protocol.received == []
    assert len(protocol.lost) == 1 and protocol.lost[0].check(error.ConnectionDone)
    assert "socket" not in vars(transport)
    assert fd not in net_reactor._selectables and fd not in net_reactor._writes
    assert sock.fileno() == -1 and "[closed]" in repr(sock)
    assert client.recv(100) == b"bye"


def test_kernel_not_taking_everything_still_sends_all_then_closes(
    connection: tuple[WriteThroughServer, socket.socket, Recorder], net_reactor: NetReactor
) -> None:
    """
    A reply larger than the socket buffers after C{loseConnection}: the
    transport has to wait for writability, so it leaves the state where
    epoll holds a socket the reactor does not know before registering as a
    writer (no C{EEXIST}), and closes once everything is sent.
    """
    transport, client, protocol = connection
    transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    payload = b"x" * (4 << 20)
    transport.write(payload)
    transport.loseConnection()
    net_reactor._flush_writes()
    assert transport.fileno() in net_reactor._writes
    received = bytearray()
    client.setblocking(False)

    def drained() -> bool:
        try:
            while chunk := client.recv(1 << 20):
                received.extend(chunk)
        except BlockingIOError:
            pass
        return bool(protocol.lost)

    poll(net_reactor, drained, rounds=2000)
    assert bytes(received) == payload
    assert protocol.lost[0].check(error.ConnectionDone)
    assert net_reactor.getWriters() == [] and transport not in net_reactor.getReaders()


def test_start_reading_after_a_close_was_requested(
    connection: tuple[WriteThroughServer, socket.socket, Recorder], net_reactor: NetReactor
) -> None:
    """
    Should something start reading again before the close, the reactor is
    told properly (no C{EEXIST} from epoll) and reads are delivered.
    """
    transport, client, protocol = connection
    transport._stop_reading()
    assert transport._in_epoll_unknown
    transport.startReading()
    assert not transport._in_epoll_unknown
    assert transport.fileno() in net_reactor._reads
    client.sendall(b"again")
    poll(net_reactor, lambda: protocol.received == [b"again"])


def test_abort_after_lose_connection_resets(
    connection: tuple[WriteThroughServer, socket.socket, Recorder], net_reactor: NetReactor
) -> None:
    """
    C{abortConnection} after C{loseConnection}: the socket is closed with a
    reset and the protocol is told the connection was aborted.
    """
    transport, client, protocol = connection
    transport.loseConnection()
    transport.abortConnection()
    assert len(net_reactor.getDelayedCalls()) == 1
    net_reactor.runUntilCurrent()
    assert protocol.lost[0].check(error.ConnectionAborted)
    with pytest.raises(ConnectionResetError):
        client.recv(10)
    net_reactor._flush_writes()
    assert len(protocol.lost) == 1


def test_peer_close_is_reported_and_unregisters(
    connection: tuple[WriteThroughServer, socket.socket, Recorder], net_reactor: NetReactor
) -> None:
    transport, client, protocol = connection
    fd = transport.fileno()
    client.close()
    poll(net_reactor, lambda: bool(protocol.lost))
    assert protocol.lost[0].check(error.ConnectionDone)
    assert fd not in net_reactor._reads and fd not in net_reactor._selectables


def test_lost_connection_in_flush_is_reported(
    connection: tuple[WriteThroughServer, socket.socket, Recorder], net_reactor: NetReactor
) -> None:
    """
    A send that fails (the peer reset) loses the connection through the
    reactor's C{_disconnectSelectable}, which forgets the socket.
    """
    transport, client, protocol = connection
    fd = transport.fileno()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()
    transport.write(b"into the void")
    for _ in range(3):
        if protocol.lost:
            break
        net_reactor._flush_writes()
        transport.write(b"more")
    assert protocol.lost and protocol.lost[0].check(error.ConnectionLost, error.ConnectionDone)
    assert fd not in net_reactor._reads and fd not in net_reactor._selectables


def test_other_selectables_take_twisteds_path(net_reactor: NetReactor) -> None:
    """
    Only L{WriteThroughServer} takes the short path of
    C{_disconnectSelectable}; others get Twisted's removeReader/Writer.
    """
    calls: list[str] = []

    class Other:
        def fileno(self) -> int:
            return -1

        def connectionLost(self, reason: Failure) -> None:
            calls.append(reason.type.__name__)  # type: ignore[union-attr]

    net_reactor._disconnectSelectable(Other(), error.ConnectionLost(), False)
    assert calls == ["ConnectionLost"]


def test_disconnect_all_loses_every_connection(
    connection: tuple[WriteThroughServer, socket.socket, Recorder], net_reactor: NetReactor
) -> None:
    """
    Reactor shutdown (C{disconnectAll}) loses connections as before.
    """
    transport, _, protocol = connection
    net_reactor.disconnectAll()
    assert protocol.lost and protocol.lost[0].check(error.ConnectionLost)
    assert "socket" not in vars(transport)


# Accepting: no address object for Twisted's own buildProtocol --------------


class AddressFactory(Factory):
    protocol = Recorder

    def __init__(self) -> None:
        self.addresses: list[Any] = []

    def buildProtocol(self, addr: Any) -> Protocol | None:
        self.addresses.append(addr)
        return super().buildProtocol(addr)


@pytest.mark.parametrize(
    ("factory", "expected"), [(Factory.forProtocol(Recorder), None), (AddressFactory(), "addr")]
)
def test_address_made_only_for_factories_that_read_it(
    net_reactor: NetReactor, factory: Factory, expected: str | None
) -> None:
    counters = Counters()
    port = GuardedPort(
        0,
        factory,
        50,
        LOOPBACK,
        net_reactor,
        refusals=RefusalLog(counters, net_reactor),
        busy_line=b"busy\n",
    )
    port.transport = WriteThroughServer
    built: list[Any] = []
    original = factory.buildProtocol

    def spy(addr: Any) -> Any:
        built.append(addr)
        return original(addr)

    factory.buildProtocol = spy  # type: ignore[method-assign]
    # The check looks at the class's method, so the spy does not change it.
    port.startListening()
    try:
        client = socket.create_connection((LOOPBACK, port.getHost().port), timeout=5)
        poll(net_reactor, lambda: bool(built))
        if expected is None:
            assert built == [None]
        else:
            assert built == [IPv4Address("TCP", LOOPBACK, client.getsockname()[1])]
        client.close()
    finally:
        port.stopListening()
        # Let the port's deferred connectionLost run: it closes the
        # listening socket and the port's reserve descriptor.
        net_reactor.runUntilCurrent()
        assert port._reserve is None and not hasattr(port, "socket")


# The greeting protocol reads the peer from the transport -------------------


@pytest.mark.parametrize(
    "family", [socket.AF_INET, pytest.param(socket.AF_INET6, marks=needs_ipv6)]
)
def test_peer_is_what_get_peer_gives(net_reactor: NetReactor, family: int) -> None:
    """
    The peer a session logs and counts per host is the one C{getPeer}
    would give, on the plain TCP transport and on Twisted's own.
    """
    host = LOOPBACK if family == socket.AF_INET else "::1"
    factory = GreetingFactory("seed", ServerConfig(), clock=net_reactor)
    for transport_type in (WriteThroughServer, tcp.Server):
        client, protocol, transport = open_session(
            factory, net_reactor, transport_type, host, family
        )
        peer = transport.getPeer()
        assert isinstance(peer, IPv4Address if family == socket.AF_INET else IPv6Address)
        assert protocol.peer == format_address(peer)
        assert protocol.peer_host == peer.host
        assert factory.per_peer == {peer.host: 1}
        transport.abortConnection()
        for call in net_reactor.getDelayedCalls():
            call.cancel()
        transport.connectionLost(Failure(error.ConnectionAborted()))
        assert factory.per_peer == {}
        client.close()


def test_peer_of_a_wrapping_transport_is_its_own(net_reactor: NetReactor) -> None:
    """
    A transport with its own C{getPeer} (a TLS or PROXY-header wrapper) is
    asked, not read around.
    """

    class Wrapper(WriteThroughServer):
        def getPeer(self) -> IPv4Address:
            return IPv4Address("TCP", "203.0.113.7", 4242)

    factory = GreetingFactory("seed", ServerConfig(), clock=net_reactor)
    client, protocol, transport = open_session(factory, net_reactor, Wrapper)
    assert protocol.peer == "203.0.113.7:4242" and protocol.peer_host == "203.0.113.7"
    transport.loseConnection()
    net_reactor._flush_writes()
    assert factory.sessions == set()
    client.close()


def test_hosts_are_counted_only_with_a_per_host_limit(net_reactor: NetReactor) -> None:
    """
    With C{max_per_peer} off, sessions are admitted and counted without the
    per-host table (its only use is that limit).
    """
    config = ServerConfig(max_per_peer=0, log_connections=False)
    factory = GreetingFactory("seed", config, clock=net_reactor)
    client, protocol, transport = open_session(factory, net_reactor)
    assert factory.sessions == {protocol} and factory.per_peer == {}
    assert factory.counters.connections_open == 1
    # Nothing needed the peer's description yet: it is made on demand.
    assert protocol._peer is None
    transport.loseConnection()
    net_reactor._flush_writes()
    assert factory.sessions == set() and factory.per_peer == {}
    assert factory.counters.connections_open == 0
    assert client.recv(100) == b"Welcome!"
    assert client.recv(100) == b""
    host, port = client.getsockname()
    assert protocol.peer == f"{host}:{port}" and protocol.peer_host == host
    client.close()


# The greeting leaves at once -----------------------------------------------


def test_greeting_is_sent_without_waiting_for_the_flush(net_reactor: NetReactor) -> None:
    """
    On the write-through transport the greeting is sent during
    C{connectionMade}, not queued for the end of the iteration.
    """
    factory = GreetingFactory("line", ServerConfig(), clock=net_reactor)
    client, _, transport = open_session(factory, net_reactor)
    assert not transport.has_unsent_data()
    assert client.recv(100) == b"Welcome!\r\n"
    assert factory.counters.bytes_out == len(b"Welcome!\r\n")
    client.close()


class RefusingSocket:
    """
    A socket whose C{send} takes C{room} bytes, or fails with C{error}.
    """

    def __init__(self, room: int = 0, error: OSError | None = None) -> None:
        self.room = room
        self.error = error

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return 99

    def send(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        return min(self.room, len(data))


class FlushListReactor(FakeTransportReactor):
    pass


@pytest.mark.parametrize(
    ("sock", "queued"),
    [
        (RefusingSocket(room=3), b"come!"),
        (RefusingSocket(error=BlockingIOError()), b"Welcome!"),
        (RefusingSocket(error=ConnectionResetError()), b"Welcome!"),
    ],
)
def test_greeting_the_kernel_does_not_take_is_written(sock: Any, queued: bytes) -> None:
    """
    What the kernel does not take at once (or a failing C{send}) is queued
    as an ordinary write, for the end-of-iteration flush (which reports a
    broken connection as Twisted does).
    """
    reactor = FlushListReactor()
    transport = WriteThroughServer(sock, Recorder(), (LOOPBACK, 1), None, 1, cast(Any, reactor))
    transport.write(b"Welcome!")
    assert b"".join(transport._tempDataBuffer) == queued
    assert reactor.flush_list == [transport]


def test_greeting_through_a_wrapping_transport_is_written(net_reactor: NetReactor) -> None:
    """
    A wrapper forwarding unknown attributes to the transport it wraps (as
    Twisted's TLS wrapper does) gets an ordinary C{write}: the greeting
    must not bypass it.
    """
    written: list[bytes] = []
    inner = WriteThroughServer(
        cast(Any, RefusingSocket(room=100)),
        Recorder(),
        (LOOPBACK, 1),
        None,
        1,
        cast(Any, FlushListReactor()),
    )

    class Wrapper:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def write(self, data: bytes) -> None:
            written.append(data)

        def registerProducer(self, producer: Any, streaming: bool) -> None:
            pass

        def getPeer(self) -> IPv4Address:
            return IPv4Address("TCP", LOOPBACK, 1)

    factory = GreetingFactory("seed", ServerConfig(), clock=net_reactor)
    protocol = factory.buildProtocol(None)
    assert protocol is not None
    protocol.makeConnection(cast(Any, Wrapper()))
    assert written == [b"Welcome!"]
