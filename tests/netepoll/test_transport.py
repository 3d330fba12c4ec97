"""
How the C{netepoll} reactor and its transport meet
(L{twisted_net.netepoll.interface}): one read path, one send path, one flush
queue, and a transport that needs nothing of its reactor beyond the
interface.  The reactor's hooks for code that builds its own ports.
"""

from __future__ import annotations

import errno
import select
import socket
from collections.abc import Iterator
from typing import Any, cast

import pytest
from netepoll_fakes import FakeTransportReactor
from twisted.internet import main as twisted_main
from twisted.internet import tcp
from twisted.internet.error import ConnectionAborted
from twisted.internet.main import CONNECTION_DONE
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

import twisted_net.netepoll.reactor as reactor_module
import twisted_net.netepoll.send as send_module
from twisted_net.netepoll.accept import accepter
from twisted_net.netepoll.reactor import NetReactor
from twisted_net.netepoll.send import send_queued
from twisted_net.netepoll.transport import WriteThroughPort, WriteThroughServer

LOOPBACK = "127.0.0.1"


class Echo(Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        self.transport.write(data)  # type: ignore[union-attr]


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


def served(reactor: Any) -> tuple[WriteThroughServer, socket.socket, Echo]:
    listener = socket.create_server((LOOPBACK, 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    accepted, address = listener.accept()
    listener.close()
    protocol = Echo()
    transport = WriteThroughServer(accepted, protocol, address, None, 1, reactor)
    protocol.makeConnection(transport)
    return transport, client, protocol


def turn(reactor: NetReactor, until: Any, rounds: int = 100) -> None:
    for _ in range(rounds):
        if until():
            return
        reactor.doPoll(0.02)
    assert until()


def sent(transport: WriteThroughServer) -> object:
    """
    Run the one send path for C{transport} alone.

    @return: why the connection is lost, if the send found out.
    """
    whys: list[object] = []
    send_queued([transport], lambda lost, why, in_read: whys.append(why))
    assert not transport._flush_queued and len(whys) <= 1
    return whys[0] if whys else None


class Calls:
    """
    Counts the calls of a function.
    """

    def __init__(self, function: Any) -> None:
        self.count = 0

        def counted(*args: Any) -> Any:
            self.count += 1
            return function(*args)

        self.counted = counted


def test_every_read_is_the_reactors_own(
    net_reactor: NetReactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    The reactor reads a server transport itself, with one C{read(2)} for a
    plain read event and for one that comes with writability alike (then
    handed on as a write); Twisted's C{doRead} is never called.
    """
    twisteds = Calls(tcp.Connection.doRead)
    monkeypatch.setattr(tcp.Connection, "doRead", twisteds.counted)
    descriptor_reads = Calls(reactor_module._read_descriptor)
    monkeypatch.setattr(reactor_module, "_read_descriptor", descriptor_reads.counted)
    writes = Calls(WriteThroughServer.doWrite)
    monkeypatch.setattr(WriteThroughServer, "doWrite", writes.counted)
    transport, client, protocol = served(net_reactor)
    with client:
        client.sendall(b"Michael")
        turn(net_reactor, lambda: protocol.received == [b"Michael"])
        assert descriptor_reads.count == 1 and writes.count == 0
        # Readable and writable at once: the combined event.
        transport.startWriting()
        client.sendall(b"Tracy")
        turn(net_reactor, lambda: protocol.received == [b"Michael", b"Tracy"])
        assert descriptor_reads.count == 2 and writes.count >= 1
        assert twisteds.count == 0
        transport.stopWriting()
        assert client.recv(100) == b"MichaelTracy"


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        (b"", twisted_main.CONNECTION_DONE),
        (OSError(errno.ECONNRESET, "reset"), twisted_main.CONNECTION_LOST),
    ],
)
def test_the_reactors_read_reports_end_and_errors_as_twisted_does(
    net_reactor: NetReactor, monkeypatch: pytest.MonkeyPatch, incoming: Any, expected: Any
) -> None:
    def read(fd: int, size: int) -> bytes:
        if isinstance(incoming, Exception):
            raise incoming
        return incoming  # type: ignore[no-any-return]

    monkeypatch.setattr(reactor_module, "_read_descriptor", read)
    lost: list[object] = []
    monkeypatch.setattr(net_reactor, "_disconnectSelectable", lambda s, why, r: lost.append(why))
    transport, client, protocol = served(net_reactor)
    with client:
        client.sendall(b"Michael")
        turn(net_reactor, lambda: lost != [])
        assert lost[0] is expected and protocol.received == []
        transport.connectionLost(Failure(expected))


def test_one_send_path_one_write_a_transport_an_iteration(
    net_reactor: NetReactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    What transports write leaves through the one C{send_queued}, called
    once per iteration for all of them, with one C{write(2)} per transport
    however many writes it got; Twisted's C{doWrite} is not called.
    """
    sends = Calls(send_module.send_queued)
    monkeypatch.setattr(reactor_module, "send_queued", sends.counted)
    writes = Calls(send_module._write_descriptor)
    monkeypatch.setattr(send_module, "_write_descriptor", writes.counted)
    twisteds = Calls(WriteThroughServer.doWrite)
    monkeypatch.setattr(WriteThroughServer, "doWrite", twisteds.counted)
    (first, client, _), (second, other, _) = served(net_reactor), served(net_reactor)
    with client, other:
        for transport in (first, second):
            transport._nothing_written = False
            transport.write(b"Hello, ")
            transport.write(b"M!")
        assert net_reactor._unflushed == [first, second]
        net_reactor.doPoll(0)
        assert sends.count == 1 and writes.count == 2 and twisteds.count == 0
        assert client.recv(100) == other.recv(100) == b"Hello, M!"
        first.loseConnection()
        assert net_reactor._unflushed == [first]
        net_reactor.doPoll(0)
        assert sends.count == 2 and writes.count == 2
        assert client.recv(100) == b""


def test_the_flush_queue_holds_a_transport_once() -> None:
    reactor = FakeTransportReactor()
    transport, client, _ = served(reactor)
    with client:
        transport.write(b"a")
        transport.write(b"b")
        transport.loseConnection()
        assert reactor.flush_list == [transport]
        assert sent(transport) is CONNECTION_DONE
        assert not transport._flush_queued
        assert client.recv(100) == b"ab"
        transport.connectionLost(Failure(CONNECTION_DONE))


def test_the_transport_needs_only_the_interface() -> None:
    """
    A whole connection (set-up, reads, writes, a close, the loss) runs on a
    reactor that has only the interface and C{IReactorFDSet}: none of the
    epoll reactor's tables or its epoll object.
    """
    reactor = FakeTransportReactor()
    for private in ("_poller", "_reads", "_writes", "_selectables"):
        assert not hasattr(reactor, private)
    transport, client, protocol = served(reactor)
    with client:
        assert reactor.readers == {transport}
        client.sendall(b"Sarah")
        select.select([transport.socket], [], [], 5)
        assert transport.doRead() is None
        assert protocol.received == [b"Sarah"]
        assert sent(transport) is None
        assert client.recv(100) == b"Sarah"
        transport.loseConnection()
        why = sent(transport)
        assert why is CONNECTION_DONE
        transport.connectionLost(Failure(why))
        assert reactor.readers == set() and reactor.writers == set()
        assert client.recv(100) == b""


def test_net_reactor_is_a_transport_reactor(net_reactor: NetReactor) -> None:
    """
    L{NetReactor} implements every method of the interface the transport
    asks for (the fake above stands in for it in the unit tests).
    """
    for name in ("watch_new_connection", "forget_until_close", "unregister_forgotten"):
        assert callable(getattr(net_reactor, name))
    assert callable(net_reactor.forget_lost)
    assert net_reactor._unflushed == []


def test_the_reactor_offers_its_transport_and_accepter(net_reactor: NetReactor) -> None:
    assert net_reactor.serverTransport is WriteThroughServer
    assert net_reactor.makeAccepter is accepter
    port = net_reactor.listenTCP(0, Factory.forProtocol(Protocol), interface=LOOPBACK)
    try:
        assert isinstance(port, WriteThroughPort)
        assert port.transport is net_reactor.serverTransport
    finally:
        port.stopListening()


def test_another_reactor_offers_no_hooks() -> None:
    """
    What C{getattr(reactor, "serverTransport", tcp.Server)} falls back to
    on Twisted's own reactors.
    """
    from twisted.internet.epollreactor import EPollReactor

    stock = EPollReactor()
    try:
        assert getattr(stock, "serverTransport", tcp.Server) is tcp.Server
        assert getattr(stock, "makeAccepter", None) is None
    finally:
        cast(Any, stock)._poller.close()


# WriteThroughServer on a fake socket -------------------------------------------


class FakeSocket:
    """
    Records sends, shutdowns and closes; C{recv} pops C{incoming}, where an
    C{OSError} is raised instead of returned.
    """

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.calls: list[str] = []
        self.incoming: list[bytes | OSError] = []

    def send(self, data: Any) -> int:
        self.sends.append(bytes(data))
        return len(data)

    def recv(self, size: int) -> bytes:
        item = self.incoming.pop(0)
        if isinstance(item, OSError):
            raise item
        return item

    def shutdown(self, how: int) -> None:
        self.calls.append(f"shutdown({how})")

    def close(self) -> None:
        self.calls.append("close")

    def setblocking(self, flag: bool) -> None:
        pass

    def setsockopt(self, *args: Any) -> None:
        self.calls.append("setsockopt")

    def fileno(self) -> int:
        return 99


class FakeReactor(FakeTransportReactor):
    """
    What a transport asks of L{twisted_net.netepoll.reactor.NetReactor}.
    """


class Recorder(Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Any] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.append(reason)


def make_transport() -> tuple[WriteThroughServer, FakeSocket, FakeReactor, Recorder]:
    sock = FakeSocket()
    fake_reactor = FakeReactor()
    protocol = Recorder()
    no_port: Any = None
    transport = WriteThroughServer(
        cast(Any, sock), protocol, (LOOPBACK, 5555), no_port, 1, cast(Any, fake_reactor)
    )
    protocol.makeConnection(transport)
    transport._nothing_written = False  # later writes: the first is test_transport_boundary's
    return transport, sock, fake_reactor, protocol


class FakePort:
    _realPortNumber = 9999


def test_transport_state_is_twisteds_own() -> None:
    """
    The lean constructor leaves a transport with the same state as
    L{tcp.Server}'s (so that a Twisted upgrade adding some shows up here),
    and the log prefix and C{repr} Twisted would have formatted, made on
    demand and still there after the connection is gone.
    """
    ours = WriteThroughServer(
        cast(Any, FakeSocket()),
        Recorder(),
        (LOOPBACK, 5555),
        cast(Any, FakePort()),
        7,
        cast(Any, FakeReactor()),
    )
    twisteds = tcp.Server(
        cast(Any, FakeSocket()),
        Recorder(),
        (LOOPBACK, 5555),
        cast(Any, FakePort()),
        7,
        cast(Any, FakeReactor()),
    )
    assert ours.logPrefix() == twisteds.logPrefix() == f"Recorder,7,{LOOPBACK}"
    assert repr(ours) == repr(twisteds) == "<Recorder #7 on 9999>"
    made = {"_logstr", "_repstr"}
    # Class attributes of Twisted's that the lean transport copies into the
    # instance (they are read on every message), with Twisted's values, and
    # the descriptor it reads and writes.
    copied = {
        "dataBuffer",
        "offset",
        "bufferSize",
        "TLS",
        "disconnecting",
        "producerPaused",
        "_aborting",
        "_writeDisconnecting",
        "_writeDisconnected",
    }
    for name in copied:
        assert name not in vars(twisteds)
        assert getattr(ours, name) == getattr(twisteds, name), name
    assert ours.descriptor == ours.socket.fileno()
    own = made | copied | {"descriptor", "_flush_queued", "_plain", "_nothing_written"}
    assert set(vars(ours)) - own == set(vars(twisteds)) - {"logstr", "repstr"}
    ours.connectionLost(Failure(twisted_main.CONNECTION_DONE))
    assert ours.logPrefix() == f"Recorder,7,{LOOPBACK}"
    ours.repstr = "<set by _fromConnectedSocket>"
    assert repr(ours) == "<set by _fromConnectedSocket>"


def test_close_with_nothing_unsent_needs_no_writer_and_no_empty_send() -> None:
    """
    C{loseConnection} with everything sent stops reading and closes at the
    end of the iteration: no epoll writer, no zero-byte C{send}.
    """
    transport, sock, fake_reactor, _ = make_transport()
    transport.loseConnection()
    assert fake_reactor.readers == set() and fake_reactor.writers == set()
    assert fake_reactor.flush_list == [transport]
    assert sent(transport) is twisted_main.CONNECTION_DONE
    assert sock.sends == []


def test_close_after_write_sends_everything_first() -> None:
    transport, sock, fake_reactor, _ = make_transport()
    transport.write(b"Hello, M!")
    transport.loseConnection()
    assert fake_reactor.flush_list == [transport]
    assert sent(transport) is twisted_main.CONNECTION_DONE
    assert sock.sends == [b"Hello, M!"]


def test_close_while_bytes_wait_for_writability_waits_for_them() -> None:
    """
    Bytes the kernel did not take keep the connection open until a
    writability event has sent them (Twisted's own path).
    """
    transport, sock, fake_reactor, _ = make_transport()
    transport.dataBuffer = b"rest"
    transport.offset = 0
    transport.startWriting()
    transport.loseConnection()
    assert transport.disconnecting
    assert fake_reactor.flush_list == []
    assert transport.doWrite() is twisted_main.CONNECTION_DONE
    assert sock.sends == [b"rest"]


def test_connection_lost_closes_without_shutdown() -> None:
    """
    An orderly close is a plain C{close} (the peer sees the same FIN); an
    abort still resets the connection.
    """
    transport, sock, _, protocol = make_transport()
    transport.connectionLost(Failure(twisted_main.CONNECTION_DONE))
    assert sock.calls == ["close"]
    assert len(protocol.lost) == 1
    aborted, sock, _, _ = make_transport()
    aborted.connectionLost(Failure(ConnectionAborted()))
    assert sock.calls == ["setsockopt", "close"]


class TwoPieces(Echo):
    """
    Answers each read in two writes, as an HTTP server writes a header and
    then a body.
    """

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        self.transport.write(b"head:")  # type: ignore[union-attr]
        self.transport.write(data)  # type: ignore[union-attr]


def test_a_reply_in_pieces_leaves_together_even_as_the_first_write(
    net_reactor: NetReactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Only what a server sends before the peer has spoken leaves in the
    C{write} call; a protocol whose first output answers a read (and comes
    in two writes) gets both pieces in one C{write(2)} at the end of the
    iteration, not two segments that Nagle's algorithm would hold apart.
    """
    descriptor_writes: list[bytes] = []
    real_write = send_module._write_descriptor

    def recording(descriptor: int, data: bytes) -> int:
        descriptor_writes.append(bytes(data))
        return real_write(descriptor, data)

    monkeypatch.setattr(send_module, "_write_descriptor", recording)
    listener = socket.create_server((LOOPBACK, 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    accepted, address = listener.accept()
    listener.close()
    protocol = TwoPieces()
    transport = WriteThroughServer(accepted, protocol, address, None, 1, net_reactor)
    protocol.makeConnection(transport)
    with client:
        client.sendall(b"GET")
        turn(net_reactor, lambda: protocol.received == [b"GET"])
        net_reactor.doPoll(0)
        assert descriptor_writes == [b"head:GET"]
        assert client.recv(100) == b"head:GET"
