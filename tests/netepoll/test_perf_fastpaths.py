"""
The fast paths of issue 4 behave as the Twisted code they shorten:
L{WriteThroughServer}'s read and close paths on a fake socket, the
L{accepter} and L{LeanDatagramPort} on real loopback sockets, the C{seed}
framing's one-message shortcut against its general path, and the
per-connection log events that C{twist --log-level warn net} no longer
builds only to drop them.
"""

from __future__ import annotations

import errno
import itertools
import socket
import time
from collections.abc import Generator
from typing import Any, cast

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from netepoll_fakes import FakeTransportReactor
from twisted.application.twist._options import TwistOptions
from twisted.internet import defer, reactor, tcp
from twisted.internet import main as twisted_main
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from twisted_net.config import ServerConfig
from twisted_net.hello import split_seed_read
from twisted_net.netepoll.accept import accepter
from twisted_net.netepoll.transport import WriteThroughServer
from twisted_net.netepoll.udp import LeanDatagramPort
from twisted_net.server.datagram import GreetingDatagramProtocol
from twisted_net.server.stream import GreetingFactory, SeedProtocol
from twisted_net.tap import Options

LOOPBACK = "127.0.0.1"


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
    own = made | copied | {"descriptor", "_flush_queued", "_plain"}
    assert set(vars(ours)) - own == set(vars(twisteds)) - {"logstr", "repstr"}
    ours.connectionLost(Failure(twisted_main.CONNECTION_DONE))
    assert ours.logPrefix() == f"Recorder,7,{LOOPBACK}"
    ours.repstr = "<set by _fromConnectedSocket>"
    assert repr(ours) == "<set by _fromConnectedSocket>"


def test_read_hands_bytes_to_the_protocol() -> None:
    transport, sock, _, protocol = make_transport()
    sock.incoming = [b"Michael", BlockingIOError(errno.EAGAIN, "nothing")]
    assert transport.doRead() is None
    assert transport.doRead() is None
    assert protocol.received == [b"Michael"]


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        (b"", twisted_main.CONNECTION_DONE),
        (OSError(errno.ECONNRESET, "reset"), twisted_main.CONNECTION_LOST),
    ],
)
def test_read_reports_end_and_errors_as_twisted_does(incoming: Any, expected: Any) -> None:
    transport, sock, _, protocol = make_transport()
    sock.incoming = [incoming]
    assert transport.doRead() is expected
    assert protocol.received == []


def test_close_with_nothing_unsent_needs_no_writer_and_no_empty_send() -> None:
    """
    C{loseConnection} with everything sent stops reading and closes at the
    end of the iteration: no epoll writer, no zero-byte C{send}.
    """
    transport, sock, fake_reactor, _ = make_transport()
    transport.loseConnection()
    assert fake_reactor.readers == set() and fake_reactor.writers == set()
    assert fake_reactor.flush_list == [transport]
    assert transport.send_queued() is twisted_main.CONNECTION_DONE
    assert sock.sends == []


def test_close_after_write_sends_everything_first() -> None:
    transport, sock, fake_reactor, _ = make_transport()
    transport.write(b"Hello, M!")
    transport.loseConnection()
    assert fake_reactor.flush_list == [transport]
    assert transport.send_queued() is twisted_main.CONNECTION_DONE
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


# LeanDatagramPort on the test reactor ------------------------------------------


class Datagrams(DatagramProtocol):
    def __init__(self, expected: int) -> None:
        self.received: list[tuple[bytes, Any]] = []
        self.expected = expected
        self.done: defer.Deferred[None] = defer.Deferred()

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append((datagram, addr))
        if datagram == b"boom\n":
            raise ValueError("a broken protocol")
        if len(self.received) == self.expected:
            self.done.callback(None)


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, LOOPBACK), (socket.AF_INET6, "::1")])
@pytest_twisted.inlineCallbacks
def test_lean_datagram_port_delivers_every_datagram(
    family: int, host: str
) -> Generator[Any, Any, None]:
    """
    Every datagram arrives, in order, with a C{(host, port)} address (IPv6
    flow and scope dropped, as L{twisted.internet.udp.Port} does), and a
    protocol that raises does not stop the port.
    """
    protocol = Datagrams(expected=4)
    port = LeanDatagramPort(0, protocol, host, 2048, reactor)
    try:
        port.startListening()
    except Exception as error:  # no IPv6 loopback here
        pytest.skip(f"cannot listen on {host}: {error}")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as client:
            client.bind((host, 0))
            for payload in (b"one", b"boom", b"two", b"three"):
                client.sendto(payload, (host, port.getHost().port))
            yield protocol.done.addTimeout(5, reactor)
            source = client.getsockname()[:2]
        assert protocol.received == [
            (b"one", source),
            (b"boom", source),
            (b"two", source),
            (b"three", source),
        ]
    finally:
        yield port.stopListening()


class DatagramBatches(DatagramProtocol):
    """
    Records the batches its port hands over; a batch holding C{boom} raises
    after being recorded.
    """

    def __init__(self) -> None:
        self.batches: list[list[tuple[bytes, Any]]] = []
        self.refused = 0

    def datagramsReceived(self, datagrams: list[tuple[bytes, Any]]) -> None:
        self.batches.append(list(datagrams))
        if any(datagram == b"boom" for datagram, _ in datagrams):
            raise ValueError("a broken protocol")

    def connectionRefused(self) -> None:
        self.refused += 1


def quiet_port(protocol: Any, host: str = LOOPBACK, batch_size: int = 2) -> LeanDatagramPort:
    """
    A listening port that the reactor does not read: the test calls
    C{doRead} itself once its datagrams are queued.
    """
    port = LeanDatagramPort(0, protocol, host, 2048, reactor)
    port.batch_size = batch_size
    try:
        port.startListening()
    except Exception as error:  # no IPv6 loopback here
        pytest.skip(f"cannot listen on {host}: {error}")
    port.stopReading()
    return port


def queue(port: LeanDatagramPort, payloads: list[bytes]) -> Any:
    """
    Send C{payloads} to C{port} from a fresh client; return its address.
    """
    host = port.getHost().host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as client:
        client.bind((host, 0))
        for payload in payloads:
            client.sendto(payload, (host, port.getHost().port))
        source = client.getsockname()[:2]
    time.sleep(0.05)  # loopback delivery is immediate; leave room anyway
    return source


@pytest.mark.parametrize("host", [LOOPBACK, "::1"])
@pytest_twisted.inlineCallbacks
def test_lean_datagram_port_delivers_batches(host: str) -> Generator[Any, Any, None]:
    """
    A protocol with C{datagramsReceived} gets every datagram, in order, in
    batches of at most C{batch_size}, with C{(host, port)} addresses; the
    last, short batch read before the socket is empty is delivered too.
    """
    protocol = DatagramBatches()
    port = quiet_port(protocol, host)
    try:
        source = queue(port, [b"1", b"2", b"3", b"4", b"5"])
        port.doRead()
        assert protocol.batches == [
            [(b"1", source), (b"2", source)],
            [(b"3", source), (b"4", source)],
            [(b"5", source)],
        ]
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_lean_datagram_port_stops_after_the_batch_reaching_max_throughput() -> Generator[
    Any, Any, None
]:
    """
    One wakeup reads on until the batch in which C{maxThroughput} bytes
    were read; the rest waits for the next wakeup.
    """
    protocol = DatagramBatches()
    port = quiet_port(protocol)
    port.maxThroughput = 10
    try:
        queue(port, [b"abcd"] * 5)
        port.doRead()
        assert [len(batch) for batch in protocol.batches] == [2, 2]
        port.doRead()
        assert [len(batch) for batch in protocol.batches] == [2, 2, 1]
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_lean_datagram_port_logs_a_failing_batch_and_reads_on() -> Generator[Any, Any, None]:
    """
    An exception escaping C{datagramsReceived} is logged; the port goes on
    with the next batch.
    """
    protocol = DatagramBatches()
    port = quiet_port(protocol, batch_size=1)
    try:
        queue(port, [b"one", b"boom", b"two"])
        with capturedLogs() as events:
            port.doRead()
        assert [batch[0][0] for batch in protocol.batches] == [b"one", b"boom", b"two"]
        # log.err, as udp.Port uses: a legacy event with "failure".
        failures = [event["failure"].type for event in events if "failure" in event]
        assert failures == [ValueError]
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_lean_datagram_port_reports_refusal_on_a_connected_port() -> Generator[Any, Any, None]:
    """
    On a connected port, the ICMP refusal of a sent datagram ends the read
    with C{connectionRefused}, as on C{udp.Port}.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind((LOOPBACK, 0))
        closed_port = closed.getsockname()[1]
    protocol = DatagramBatches()
    port = quiet_port(protocol)
    try:
        port.connect(LOOPBACK, closed_port)
        port.write(b"anyone?")
        time.sleep(0.05)
        port.doRead()
        assert protocol.refused == 1
        assert protocol.batches == []
    finally:
        yield port.stopListening()


def test_list_extend_keeps_what_came_before_an_error() -> None:
    """
    C{LeanDatagramPort} fills a batch with C{list.extend(map(recvfrom,
    ...))} and relies on CPython's C{list.extend} keeping the items the
    iterator gave before it raised (C{EAGAIN} ends most batches).
    """
    results = iter([b"1", b"2"])

    def receive(size: int) -> bytes:
        for result in results:
            return result
        raise BlockingIOError(errno.EAGAIN, "empty")

    batch: list[bytes] = []
    with pytest.raises(BlockingIOError):
        batch.extend(map(receive, itertools.repeat(2048, 5)))
    assert batch == [b"1", b"2"]


# The seed framing's one-message shortcut -------------------------------------


def seed_session(config: ServerConfig) -> tuple[SeedProtocol, StringTransport]:
    factory = GreetingFactory("seed", config, clock=Clock())
    protocol = factory.buildProtocol(IPv4Address("TCP", LOOPBACK, 40000))
    assert isinstance(protocol, SeedProtocol)
    transport = StringTransport()
    protocol.makeConnection(transport)
    transport.clear()
    return protocol, transport


_READS = st.one_of(
    st.binary(max_size=12),
    st.lists(st.sampled_from([b"a", b"Mi", b"", b"exit", b"\r", b"\n", b"\n", b"Sarah"])).map(
        b"".join
    ),
    st.sampled_from(
        [
            b"exit",
            b"exit\n",
            b"Mi\nexit",
            b"Michael Jordan",
            b"Mi\r\nJo",
            b"Mi\nJo\n",
            b"a\n\nb\n",
            b"Mi\nexit\nJo\n",
            b"\n",
            b"Mi\r\n",
        ]
    ),
)


@given(st.lists(_READS, min_size=1, max_size=4), st.sampled_from([6, 64]))
def test_one_message_shortcut_answers_as_the_general_path(
    reads: list[bytes], max_message: int
) -> None:
    """
    Whatever the reads, C{dataReceived} (with its shortcuts for a read that
    is one ordinary message and for a read of whole lines) answers, closes
    and counts exactly as the general path that cuts every read into
    messages.
    """
    config = ServerConfig(max_message=max_message, max_per_peer=0)
    fast, fast_transport = seed_session(config)
    general, general_transport = seed_session(config)
    for data in reads:
        if data:
            fast.dataReceived(data)
            if not general._closing:
                general.factory.counters.bytes_in += len(data)
                general._answer_each(split_seed_read(data))
    assert fast_transport.value() == general_transport.value()
    assert fast_transport.disconnecting == general_transport.disconnecting
    assert fast.factory.counters.snapshot() == general.factory.counters.snapshot()


# Per-connection log events -------------------------------------------------------


@pytest.mark.parametrize(
    ("twist_args", "logged"),
    [
        ([], True),
        (["--log-level", "debug"], True),
        (["--log-level", "info"], True),
        (["--log-level", "warn"], False),
        (["--log-level", "error"], False),
    ],
)
def test_connection_events_follow_twists_log_level(twist_args: list[str], logged: bool) -> None:
    """
    Under C{twist --log-level warn} (or higher) the server does not build
    the connection events its log would drop.
    """
    options = TwistOptions()
    options.parseOptions([*twist_args, "net", "--listen", "tcp:0", "--udp", "127.0.0.1:0"])
    assert options.subOptions["config"].log_connections is logged


def test_net_options_alone_log_connections() -> None:
    """
    Outside C{twist} (embedding, C{twistd}), connections are logged.
    """
    options = Options()
    options.parseOptions(["--listen", "tcp:0"])
    assert options["config"].log_connections is True


@pytest.mark.parametrize("log_connections", [True, False])
def test_connections_are_counted_whether_or_not_logged(log_connections: bool) -> None:
    config = ServerConfig(max_per_peer=0, log_connections=log_connections)
    with capturedLogs() as events:
        protocol, _ = seed_session(config)
        protocol.dataReceived(b"exit")
        protocol.connectionLost()
    names = [event.get("event") for event in events]
    expected = ["connection_opened", "connection_closed"] if log_connections else []
    assert [n for n in names if n in ("connection_opened", "connection_closed")] == expected
    counters = protocol.factory.counters
    assert counters.connections_total == 1 and counters.connections_open == 0


# The UDP protocol's common-datagram shortcut -------------------------------------


class NeverRemembered(set[Any]):
    """
    A source cache that never remembers, so that every datagram takes the
    general path of L{GreetingDatagramProtocol}.
    """

    def add(self, element: Any) -> None:
        pass


class SentDatagrams:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, payload: bytes, addr: Any) -> int:
        self.sent.append((payload, addr))
        return len(payload)


class DatagramTransport:
    def __init__(self) -> None:
        self.socket = SentDatagrams()


def datagram_protocol(config: ServerConfig, clock: Clock, general: bool) -> Any:
    protocol = GreetingDatagramProtocol(config, clock=clock)
    if general:
        protocol._answerable_sources = NeverRemembered()
    protocol.makeConnection(DatagramTransport())
    return protocol


_SOURCES = st.tuples(
    st.sampled_from(["127.0.0.1", "10.0.0.7", "255.255.255.255", "224.0.0.1", "::1", "0.0.0.0"]),
    st.sampled_from([40000, 40001, 7, 53, 0]),
)
_DATAGRAMS = st.one_of(
    st.binary(max_size=12),
    st.sampled_from(
        [
            b"Hello, x!",
            b"Hello, x!\r\n",
            b"error: no",
            b"Hello, far too long!",
            b"Michael Jordan",
            b"Mi\n",
            b"Mi\r\n",
        ]
    ),
)


@given(
    st.lists(
        st.tuples(st.lists(st.tuples(_DATAGRAMS, _SOURCES), max_size=5), st.floats(0, 0.05)),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([0.0, 20.0]),
    st.booleans(),
)
def test_common_datagram_shortcuts_answer_as_the_general_path(
    arrivals: list[tuple[list[tuple[bytes, tuple[str, int]]], float]],
    rate: float,
    log_messages: bool,
) -> None:
    """
    Whatever arrives from wherever, in batches or one by one, with or
    without rate limiting, the protocol answers, refuses and counts exactly
    as its general path does (the loop, source and rate guards included).
    """
    config = ServerConfig(max_message=10, udp_rate=rate, udp_burst=2, log_messages=log_messages)
    clocks = [Clock(), Clock(), Clock()]
    batches, single, general = (
        datagram_protocol(config, clocks[0], general=False),
        datagram_protocol(config, clocks[1], general=False),
        datagram_protocol(config, clocks[2], general=True),
    )
    for batch, pause in arrivals:
        for clock in clocks:
            clock.advance(pause)
        batches.datagramsReceived(batch)
        for datagram, source in batch:
            single.datagramReceived(datagram, source)
            general.datagramReceived(datagram, source)
    assert batches.transport.socket.sent == general.transport.socket.sent
    assert single.transport.socket.sent == general.transport.socket.sent
    assert batches.counters.snapshot() == general.counters.snapshot()
    assert single.counters.snapshot() == general.counters.snapshot()


def test_general_path_is_what_the_shortcut_tests_compare_with() -> None:
    """
    The reference protocol of the test above takes the general path for
    every datagram (otherwise it would compare the shortcut with itself).
    """
    protocol = datagram_protocol(ServerConfig(), Clock(), general=True)
    protocol._answer = lambda datagram, addr: taken.append(datagram)  # type: ignore[method-assign]
    taken: list[bytes] = []
    for _ in range(3):
        protocol.datagramReceived(b"M", ("127.0.0.1", 40000))
        protocol.datagramsReceived([(b"N", ("127.0.0.1", 40000))])
    assert taken == [b"M", b"N"] * 3


def test_error_answering_one_datagram_does_not_stop_the_batch() -> None:
    """
    An error while answering one datagram of a batch is logged, and the
    rest of the batch is answered and counted.
    """
    protocol = datagram_protocol(ServerConfig(), Clock(), general=False)
    answer = protocol._answer

    def broken(datagram: bytes, addr: Any) -> None:
        if datagram == b"boom\n":
            raise ValueError("broken")
        answer(datagram, addr)

    protocol._answer = broken
    source = ("127.0.0.1", 40000)
    with capturedLogs() as events:
        protocol.datagramsReceived([(b"A", source), (b"boom\n", source), (b"B", source)])
    assert [payload for payload, _ in protocol.transport.socket.sent] == [
        b"Hello, A!",
        b"Hello, B!",
    ]
    assert protocol.counters.datagrams_answered == 2
    assert [event["log_failure"].type for event in events if "log_failure" in event] == [ValueError]
