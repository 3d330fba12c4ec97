"""
Tests for L{twisted_net.server.service}: starting and stopping the listeners, and
the graceful drain of L{NetService}, on an in-memory reactor and clock.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from twisted.application.service import Service
from twisted.internet import reactor
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from zope.interface import implementer

from twisted_net.config import ServerConfig
from twisted_net.server.datagram import GreetingDatagramProtocol
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.overflows import ListenOverflowWatch
from twisted_net.server.service import (
    DatagramListener,
    ExitOnListenFailure,
    ListenFailedError,
    NetService,
    ServingNetService,
    StreamListener,
    build_service,
    exit_with,
)
from twisted_net.server.session import GreetingProtocol

LISTEN = "unix:/nonexistent/twisted-net-test.sock"


@implementer(IListeningPort)
class RecordingPort:
    """
    A listening port that only remembers whether it still listens.
    """

    def __init__(self, address: IPv4Address | UNIXAddress) -> None:
        self.address = address
        self.listening = True

    def startListening(self) -> None:
        self.listening = True

    def stopListening(self) -> None:
        self.listening = False

    def getHost(self) -> IPv4Address | UNIXAddress:
        return self.address


class Reactor(MemoryReactorClock):
    """
    An in-memory reactor and clock whose UNIX and UDP ports are
    L{RecordingPort}s.  (The service's TCP ports are real sockets made by
    its own guarded port class, so these tests listen on C{unix:} paths.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[RecordingPort] = []
        self.udp_protocols: list[Any] = []

    def listenUNIX(
        self, address: str, factory: Any, backlog: int = 50, mode: int = 0o666, wantPID: int = 0
    ) -> RecordingPort:
        self.unixServers.append((address, factory, backlog, mode, wantPID))
        listening = RecordingPort(UNIXAddress(address))
        self.ports.append(listening)
        return listening

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> RecordingPort:
        self.udp_protocols.append(protocol)
        listening = RecordingPort(IPv4Address("UDP", interface or "0.0.0.0", port or 40002))
        self.ports.append(listening)
        return listening


def start(config: ServerConfig) -> tuple[NetService, Reactor]:
    reactor = Reactor()
    service = build_service(config, "line", [LISTEN], [("127.0.0.1", 0)], reactor=reactor)
    service.startService()
    return service, reactor


def connect(service: NetService, port: int = 50000) -> tuple[GreetingProtocol, StringTransport]:
    """
    A connection accepted by the service's factory; the greeting is taken.
    """
    peer = IPv4Address("TCP", "127.0.0.1", port)
    protocol = service.factory.buildProtocol(peer)
    assert isinstance(protocol, GreetingProtocol)
    transport = StringTransport(peerAddress=peer)
    protocol.makeConnection(transport)
    transport.clear()
    return protocol, transport


def fired(deferred: Deferred[Any]) -> bool:
    results: list[object] = []
    deferred.addBoth(results.append)
    return bool(results)


def test_start_listens_and_logs_the_bound_address() -> None:
    """
    Starting listens on every TCP endpoint and UDP address and logs each
    address actually bound.
    """
    reactor = Reactor()
    service = build_service(ServerConfig(), "seed", [LISTEN], [("127.0.0.1", 0)], reactor=reactor)
    with capturedLogs() as events:
        service.startService()
    assert service.running
    assert [server[:2] for server in reactor.unixServers] == [
        ("/nonexistent/twisted-net-test.sock", service.factory)
    ]
    assert reactor.udp_protocols == [service.datagram_protocol]
    addresses = [e["address"] for e in events if e.get("event") == "listening"]
    assert addresses == ["/nonexistent/twisted-net-test.sock", "127.0.0.1:40002"]
    service.stopService()


def test_stop_without_connections_is_immediate() -> None:
    """
    With no connection open, stopping stops every port and is done at once.
    """
    service, reactor = start(ServerConfig())
    assert all(port.listening for port in reactor.ports)
    stopped = service.stopService()
    assert fired(stopped)
    assert not any(port.listening for port in reactor.ports)
    assert not service.running


def test_stop_closes_idle_connections() -> None:
    """
    An idle connection is closed at once by a stop, and the stop completes
    when it is gone.
    """
    service, _ = start(ServerConfig())
    protocol, transport = connect(service)
    stopped = service.stopService()
    assert transport.disconnecting
    assert not fired(stopped)
    protocol.connectionLost()
    assert fired(stopped)


def test_drain_waits_for_owed_delayed_replies() -> None:
    """
    A stop stops listening at once and stops reading, but every delayed
    reply already owed is still sent before the connection closes.
    """
    service, reactor = start(ServerConfig(delay=1.0))
    protocol, transport = connect(service)
    protocol.dataReceived(b"a\nb\n")
    reactor.advance(0.5)
    with capturedLogs() as events:
        stopped = service.stopService()
    assert not any(port.listening for port in reactor.ports)
    assert [e["count"] for e in events if e.get("event") == "draining"] == [1]
    assert transport.producerState == "paused"
    assert transport.value() == b""
    assert not transport.disconnecting
    reactor.advance(0.5)
    assert transport.value() == b"Hello, a!\r\nHello, b!\r\n"
    assert transport.disconnecting
    assert not transport.disconnected
    assert not fired(stopped)
    protocol.connectionLost()
    assert fired(stopped)


def test_drain_answers_every_connection() -> None:
    """
    Several connections each get their owed replies before the stop ends.
    """
    service, reactor = start(ServerConfig(delay=1.0))
    sessions = [connect(service, 50000 + index) for index in range(3)]
    for index, (protocol, _) in enumerate(sessions):
        protocol.dataReceived(b"n%d\n" % index)
    stopped = service.stopService()
    reactor.advance(1.0)
    for index, (protocol, transport) in enumerate(sessions):
        assert transport.value() == b"Hello, n%d!\r\n" % index
        assert transport.disconnecting
        protocol.connectionLost()
    assert fired(stopped)


def test_shutdown_timeout_aborts_stragglers() -> None:
    """
    Replies owed later than C{shutdown_timeout} are given up: the
    connection is aborted when the timeout passes.
    """
    service, reactor = start(ServerConfig(delay=100.0, shutdown_timeout=2.0))
    protocol, transport = connect(service)
    protocol.dataReceived(b"a\n")
    stopped = service.stopService()
    reactor.advance(1.9)
    assert not transport.disconnected
    reactor.advance(0.2)
    assert transport.disconnected
    protocol.connectionLost()
    assert fired(stopped)
    assert service.factory.counters.refusals["shutdown-timeout"] == 1


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_connection_accepted_while_draining_is_closed(framing: str) -> None:
    """
    A connection accepted while the stop is under way gets its greeting
    and is closed at once.
    """
    reactor = Reactor()
    service = build_service(ServerConfig(), framing, [LISTEN], [], reactor=reactor)
    service.startService()
    connect(service, 50000)
    service.stopService()
    _, late = connect(service, 50001)
    assert late.disconnecting


class _Recording(Service):
    def __init__(self, stops: list[str], name: str, error: Exception | None = None) -> None:
        self.stops = stops
        self.setName(name)
        self.error = error

    def startService(self) -> None:
        if self.error is not None:
            raise self.error
        super().startService()

    def stopService(self) -> None:
        self.stops.append(self.name)
        super().stopService()


@pytest.mark.parametrize(
    "error",
    [
        CannotListenError("127.0.0.1", 1, OSError(13, "Permission denied")),
        OSError(98, "Address already in use"),
        ValueError("bad port"),
        OverflowError("port must be 0-65535"),
    ],
)
def test_exit_on_listen_failure(capsys: pytest.CaptureFixture[str], error: Exception) -> None:
    """
    A child that cannot listen ends the program with one line on stderr and
    C{EX_UNAVAILABLE}, after the children already started are stopped
    (last started first); the child after it never starts.
    """
    stops: list[str] = []
    parent = ExitOnListenFailure()
    for child in (
        _Recording(stops, "first"),
        _Recording(stops, "second"),
        _Recording(stops, "failing", error),
        _Recording(stops, "never"),
    ):
        child.setServiceParent(parent)
    with pytest.raises(SystemExit) as exited:
        parent.startService()
    assert exited.value.code == os.EX_UNAVAILABLE
    assert capsys.readouterr().err == f"twist net: error: cannot listen: {error}\n"
    assert stops == ["second", "first"]
    assert not parent.getServiceNamed("never").running


def test_exit_with(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        exit_with(os.EX_SOFTWARE, "twisted-net worker: listeners and sockets differ")
    assert exited.value.code == os.EX_SOFTWARE
    assert capsys.readouterr() == ("", "twisted-net worker: listeners and sockets differ\n")


def test_serving_service_is_a_net_service() -> None:
    """
    The service C{twist net} runs is a L{NetService} that exits on a listen
    failure, and still built by L{build_service}.
    """
    service = build_service(
        ServerConfig(),
        "seed",
        [],
        [],
        reactor=MemoryReactorClock(),
        service_class=ServingNetService,
    )
    assert isinstance(service, NetService) and isinstance(service, ExitOnListenFailure)


def test_tcp_port_in_use_names_the_side_and_address() -> None:
    """
    A TCP port that cannot be bound says C{TCP} and the address, with the
    kernel's reason.
    """
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listener = StreamListener(
            f"tcp:{port}:interface=127.0.0.1",
            GreetingFactory("seed", ServerConfig()),
            reactor,
        )
        with pytest.raises(ListenFailedError) as failed:
            listener.startService()
    assert str(failed.value) == f"cannot listen on TCP 127.0.0.1:{port}: Address already in use"
    assert not listener.running


def test_udp_port_in_use_names_the_side_and_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        listener = DatagramListener(
            "127.0.0.1", port, GreetingDatagramProtocol(ServerConfig()), reactor
        )
        with pytest.raises(ListenFailedError) as failed:
            listener.startService()
    assert str(failed.value) == f"cannot listen on UDP 127.0.0.1:{port}: Address already in use"


def test_exit_on_a_listen_failure_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    parent = ExitOnListenFailure()
    failure = ListenFailedError("UDP", "[::1]:9999", "Address already in use")
    _Recording([], "failing", failure).setServiceParent(parent)
    with pytest.raises(SystemExit) as exited:
        parent.startService()
    assert exited.value.code == os.EX_UNAVAILABLE
    assert capsys.readouterr().err == (
        "twist net: error: cannot listen on UDP [::1]:9999: Address already in use\n"
    )


def test_build_service_watches_listen_overflows_with_tcp_only() -> None:
    with_tcp = build_service(ServerConfig(), "seed", ["tcp:0"], [], MemoryReactorClock())
    udp_only = build_service(ServerConfig(), "seed", [], [("127.0.0.1", 0)], MemoryReactorClock())
    worker = build_service(
        ServerConfig(), "seed", ["tcp:0"], [], MemoryReactorClock(), watch_overflows=False
    )
    watching = [
        [isinstance(child, ListenOverflowWatch) for child in service]
        for service in (with_tcp, udp_only, worker)
    ]
    assert [any(flags) for flags in watching] == [True, False, False]
