"""
The C{netepoll} reactor (L{twisted_net.netepoll.reactor}): the write path of
L{WriteThroughServer} against a fake socket, then L{NetReactor} for real in
a process of its own (this one runs pytest-twisted's reactor), and the
installed C{twist net} on it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netepoll_fakes import FakeTransportReactor
from twisted.internet import main as twisted_main
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.python import log
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_net.netepoll.reactor import NetReactor
from twisted_net.netepoll.transport import WriteThroughServer

LOOPBACK = "127.0.0.1"
HARNESS = Path(__file__).parent / "netreactor_harness.py"


# A fake socket and reactor for the write path ------------------------------


class FakeSocket:
    """
    Takes at most C{room} bytes per C{send}, or raises C{error}.
    """

    def __init__(self, room: int = 1 << 30) -> None:
        self.room = room
        self.sends: list[bytes] = []
        self.error: OSError | None = None

    def send(self, data: Any) -> int:
        if self.error is not None:
            raise self.error
        taken = bytes(data[: self.room])
        self.sends.append(taken)
        return len(taken)

    def setblocking(self, flag: bool) -> None:
        pass

    def shutdown(self, how: int) -> None:
        self.sends.append(b"<shutdown>")

    def fileno(self) -> int:
        return 99

    def close(self) -> None:
        self.sends.append(b"<close>")

    @property
    def sent(self) -> bytes:
        return b"".join(self.sends)


class FakeReactor(FakeTransportReactor):
    """
    Records what a transport asks of its reactor.
    """

    def __init__(self) -> None:
        super().__init__()
        self.later: list[Any] = []

    def callLater(self, delay: float, f: Any, *args: Any) -> None:
        self.later.append((f, args))


@implementer(IPushProducer)
class RecordingProducer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


def make_transport(room: int = 1 << 30) -> tuple[WriteThroughServer, FakeSocket, FakeReactor]:
    sock = FakeSocket(room)
    reactor = FakeReactor()
    transport = WriteThroughServer(
        sock,
        Protocol(),
        ("127.0.0.1", 5555),
        None,
        1,
        reactor,  # type: ignore[arg-type]
    )
    transport._nothing_written = False  # later writes: the first is test_transport_boundary's
    return transport, sock, reactor


def flush(transport: WriteThroughServer, reactor: FakeReactor) -> object:
    """
    Run L{NetReactor}'s own end-of-iteration flush with the fake reactor and
    socket.

    @return: why the connection is lost, if the flush found out.
    """
    assert reactor.flush_list == [transport]
    NetReactor._flush_writes(reactor)  # type: ignore[arg-type]
    assert reactor.flush_list == [] and not transport._flush_queued
    whys = [why for selectable, why in reactor.lost if selectable is transport]
    assert len(whys) <= 1
    return whys[0] if whys else None


def test_writes_of_one_iteration_leave_in_one_send() -> None:
    """
    Nothing is sent while the protocol writes; the writes of one iteration
    go out in one C{send} (no Nagle stall for a header-then-body protocol),
    with no epoll writer registered.
    """
    transport, sock, reactor = make_transport()
    transport.write(b"Hello, ")
    transport.write(b"M!")
    transport.writeSequence([b"\r", b"\n"])
    assert sock.sends == []
    assert flush(transport, reactor) is None
    assert sock.sends == [b"Hello, M!\r\n"]
    assert reactor.writers == set()
    assert not transport.has_unsent_data()


def test_partial_send_keeps_the_rest_in_order() -> None:
    """
    What the kernel does not take stays queued, the transport waits for
    writability, and later writes queue behind it in order.
    """
    transport, sock, reactor = make_transport(room=4)
    transport.write(b"0123456789")
    flush(transport, reactor)
    assert sock.sent == b"0123"
    assert reactor.writers == {transport}
    transport.write(b"abc")
    assert reactor.flush_list == []
    sock.room = 1 << 30
    assert transport.doWrite() is None
    assert sock.sent == b"0123456789abc"
    assert reactor.writers == set()


def test_would_block_buffers_everything() -> None:
    transport, sock, reactor = make_transport()
    sock.error = BlockingIOError(errno.EAGAIN, "would block")
    transport.write(b"Welcome!")
    assert flush(transport, reactor) is None
    assert reactor.writers == {transport}
    sock.error = None
    transport.doWrite()
    assert sock.sent == b"Welcome!"


@pytest.mark.parametrize("code", [errno.ECONNRESET, errno.EPIPE])
def test_broken_connection_is_reported_lost(code: int) -> None:
    transport, sock, reactor = make_transport()
    sock.error = OSError(code, "broken")
    transport.write(b"Hello, M!")
    assert flush(transport, reactor) is twisted_main.CONNECTION_LOST


def test_full_buffer_pauses_and_drained_buffer_resumes_producer() -> None:
    """
    The backpressure C{GreetingProtocol} relies on: a streaming producer is
    paused when more than C{bufferSize} bytes are queued and resumed once
    the kernel took them.
    """
    transport, sock, reactor = make_transport(room=1000)
    producer = RecordingProducer()
    transport.registerProducer(producer, True)
    transport.write(b"x" * (transport.bufferSize + 1))
    assert producer.calls == ["pause"]
    flush(transport, reactor)
    assert producer.calls == ["pause"]
    sock.room = 1 << 30
    transport.doWrite()
    assert producer.calls == ["pause", "resume"]
    assert len(sock.sent) == transport.bufferSize + 1


def test_write_then_lose_connection_sends_then_closes() -> None:
    transport, sock, reactor = make_transport()
    transport.write(b"Hello, M!")
    transport.loseConnection()
    assert flush(transport, reactor) is twisted_main.CONNECTION_DONE
    assert sock.sent == b"Hello, M!"


def test_close_with_nothing_unsent_happens_at_end_of_iteration() -> None:
    """
    C{loseConnection} with nothing to send stops reading and closes at the
    flush, without registering an epoll writer.
    """
    transport, sock, reactor = make_transport()
    transport.loseConnection()
    assert reactor.readers == set()
    assert flush(transport, reactor) is twisted_main.CONNECTION_DONE
    assert reactor.writers == set() and sock.sends == []


def test_close_waits_for_a_paused_producer() -> None:
    """
    As in Twisted: a paused streaming producer is resumed when the buffer
    drains, and the close waits until it unregisters.
    """
    transport, sock, reactor = make_transport(room=10)
    producer = RecordingProducer()
    transport.registerProducer(producer, True)
    transport.write(b"x" * (transport.bufferSize + 1))
    transport.loseConnection()
    flush(transport, reactor)
    sock.room = 1 << 30
    assert transport.doWrite() is None
    assert producer.calls == ["pause", "resume"]
    transport.unregisterProducer()
    assert transport.doWrite() is twisted_main.CONNECTION_DONE


def test_write_then_half_close_sends_then_shuts_down() -> None:
    transport, sock, reactor = make_transport()
    transport.write(b"Hello, M!")
    transport.loseWriteConnection()
    assert flush(transport, reactor) is None
    assert sock.sends == [b"Hello, M!", b"<shutdown>"]
    transport.write(b"too late")
    assert reactor.flush_list == []


def test_nothing_is_sent_after_abort() -> None:
    transport, sock, reactor = make_transport()
    transport.abortConnection()
    transport.write(b"too late")
    assert reactor.flush_list == []
    assert sock.sends == []


def test_a_pull_producer_is_asked_for_more_once_its_bytes_are_sent() -> None:
    """
    A transport with a non-streaming producer writes the way Twisted does
    (an epoll writer, then C{doWrite}): the producer is resumed when
    registered and again once what it wrote has been sent.
    """
    transport, sock, reactor = make_transport()
    producer = RecordingProducer()
    transport.registerProducer(producer, False)
    assert producer.calls == ["resume"]
    transport.write(b"chunk")
    assert reactor.flush_list == [] and reactor.writers == {transport}
    assert transport.doWrite() is None
    assert sock.sent == b"chunk"
    assert producer.calls == ["resume", "resume"]


def test_nothing_is_written_after_the_connection_is_lost() -> None:
    """
    Once the connection is lost its descriptor may belong to a new
    connection: nothing written later may reach the flush.
    """
    transport, sock, reactor = make_transport()
    transport.connectionLost(Failure(twisted_main.CONNECTION_DONE))
    transport.write(b"too late")
    assert reactor.flush_list == []
    assert sock.sends == [b"<close>"]


def test_start_tls_writes_go_through_the_tls_layer() -> None:
    """
    After C{startTLS}, the application's plain text must go to the TLS
    layer, never to the socket or the reactor's flush list.
    """
    import trustme
    from twisted.internet import ssl

    transport, sock, reactor = make_transport()
    certificate = trustme.CA().issue_cert("localhost")
    pem = certificate.private_key_and_cert_chain_pem.bytes()
    transport.startTLS(ssl.PrivateCertificate.loadPEM(pem).options())
    transport.write(b"secret")
    transport.writeSequence([b"more"])
    assert reactor.flush_list == []
    assert b"secret" not in sock.sent and b"more" not in sock.sent


def test_bytes_written_before_start_tls_leave_as_written() -> None:
    """
    What was written before C{startTLS} (a C{STARTTLS} reply) still leaves
    as it was written, in one send at the end of the iteration, though the
    transport is no longer plain; what is written after goes to the TLS
    layer.
    """
    import trustme
    from twisted.internet import ssl

    transport, sock, reactor = make_transport()
    transport.write(b"220 Ready to start TLS\r\n")
    certificate = trustme.CA().issue_cert("localhost")
    pem = certificate.private_key_and_cert_chain_pem.bytes()
    transport.startTLS(ssl.PrivateCertificate.loadPEM(pem).options())
    transport.write(b"secret")
    assert flush(transport, reactor) is None
    assert sock.sends[0] == b"220 Ready to start TLS\r\n"
    assert b"secret" not in sock.sent


def test_non_bytes_are_refused() -> None:
    transport, _, _ = make_transport()
    with pytest.raises(TypeError):
        transport.write("text")  # type: ignore[arg-type]


def test_net_reactor_is_an_epoll_reactor() -> None:
    from twisted.internet.epollreactor import EPollReactor

    assert issubclass(NetReactor, EPollReactor)


# NetReactor's read dispatch, with real sockets in this process ---------------
#
# A NetReactor instance that is not installed and never run: the test turns
# it by hand with iterate(), so pytest-twisted's reactor is not disturbed.


@implementer(IHalfCloseableProtocol)
class Echo(Protocol):
    """
    Echoes; raises on C{boom}; records how the connection ended.
    """

    def __init__(self, ends: list[str]) -> None:
        self.ends = ends

    def dataReceived(self, data: bytes) -> None:
        if data == b"boom":
            raise ValueError("boom")
        self.transport.write(data)  # type: ignore[union-attr]

    def readConnectionLost(self) -> None:
        self.ends.append("read closed")
        self.transport.write(b"bye")  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = twisted_main.CONNECTION_DONE) -> None:  # type: ignore[assignment]
        self.ends.append(type(reason.value).__name__)


@pytest.fixture
def echo_reactor() -> Iterator[tuple[NetReactor, int, list[str]]]:
    reactor = NetReactor()
    ends: list[str] = []
    factory = Factory.forProtocol(lambda: Echo(ends))
    port = reactor.listenTCP(0, factory, interface=LOOPBACK)
    try:
        yield reactor, port.getHost().port, ends
    finally:
        port.stopListening()
        for selectable in list(reactor._selectables.values()):
            if isinstance(selectable, WriteThroughServer):
                selectable.abortConnection()
        for _ in range(3):
            reactor.iterate(0)
        reactor._poller.close()


def turn_until(reactor: NetReactor, done: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        reactor.iterate(0.01)


def read_all(client: socket.socket, reactor: NetReactor) -> bytes:
    client.setblocking(False)
    got = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reactor.iterate(0.01)
        try:
            chunk = client.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            return got
        got += chunk
    raise AssertionError(f"no end of stream; got {got!r}")


def test_reads_are_dispatched_and_answered(echo_reactor: Any) -> None:
    """
    Each read reaches the protocol (through the reactor's inlined read) and
    each reply leaves at the end of the iteration.
    """
    reactor, port, ends = echo_reactor
    with socket.create_connection((LOOPBACK, port), timeout=5) as client:
        client.setblocking(False)
        for message in (b"Michael", b"Tracy", b"x" * 70000):
            sent = 0
            while sent < len(message):
                with contextlib.suppress(BlockingIOError):
                    sent += client.send(message[sent:])
                reactor.iterate(0)
            got = b""
            deadline = time.monotonic() + 5
            while len(got) < len(message) and time.monotonic() < deadline:
                reactor.iterate(0.01)
                with contextlib.suppress(BlockingIOError):
                    got += client.recv(1 << 17)
            assert got == message
        assert ends == []


def test_events_beyond_one_wait_are_served_by_the_next(
    echo_reactor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    One C{epoll_wait} takes a bounded number of events; the others are
    reported again by the next one (epoll is level-triggered), so every
    connection is answered.
    """
    import twisted_net.netepoll.reactor

    monkeypatch.setattr(twisted_net.netepoll.reactor, "_MAX_EVENTS", 2)
    reactor, port, _ = echo_reactor
    clients = [socket.create_connection((LOOPBACK, port), timeout=5) for _ in range(7)]
    try:
        for index, client in enumerate(clients):
            client.send(b"%d" % index)
        for index, client in enumerate(clients):
            client.setblocking(False)
            got = b""
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                reactor.iterate(0.01)
                with contextlib.suppress(BlockingIOError):
                    got = client.recv(100)
            assert got == b"%d" % index
    finally:
        for client in clients:
            client.close()


def test_first_replies_leave_before_the_last_peers_are_read(echo_reactor: Any) -> None:
    """
    With 200 peers ready at once, the answers to the first ones are sent
    before the last ones are read (after one poll: some answered, not all),
    so that the first peers' next messages overlap the server's reading;
    every peer is answered in the end.
    """
    reactor, port, _ = echo_reactor
    clients = []
    for _ in range(200):  # accepted as they come: the backlog is 50
        clients.append(socket.create_connection((LOOPBACK, port), timeout=5))
        reactor.iterate(0)
    try:
        turn_until(reactor, lambda: len(reactor._selectables) > len(clients))  # all accepted
        for client in clients:
            client.send(b"ping")
            client.setblocking(False)

        def answered() -> int:
            count = 0
            for client in clients:
                with contextlib.suppress(BlockingIOError):
                    count += client.recv(100, socket.MSG_PEEK) == b"ping"
            return count

        reactor.doPoll(0)
        assert 0 < answered() < len(clients)
        turn_until(reactor, lambda: answered() == len(clients))
    finally:
        for client in clients:
            client.close()


def test_half_close_is_reported_and_replies_still_arrive(echo_reactor: Any) -> None:
    reactor, port, ends = echo_reactor
    with socket.create_connection((LOOPBACK, port), timeout=5) as client:
        client.send(b"last")
        client.shutdown(socket.SHUT_WR)
        assert read_all(client, reactor) == b"lastbye"
    turn_until(reactor, lambda: len(ends) == 2)
    assert ends == ["read closed", "ConnectionDone"]


def test_an_error_in_data_received_is_logged_and_drops_the_connection(
    echo_reactor: Any,
) -> None:
    reactor, port, ends = echo_reactor
    errors: list[Any] = []
    observer = errors.append
    log.addObserver(observer)
    try:
        with socket.create_connection((LOOPBACK, port), timeout=5) as client:
            client.send(b"boom")
            assert read_all(client, reactor) == b""
    finally:
        log.removeObserver(observer)
    assert ends == ["ValueError"]
    assert any(e.get("isError") and "boom" in str(e.get("failure")) for e in errors)


def test_a_reset_peer_is_a_lost_connection(echo_reactor: Any) -> None:
    reactor, port, ends = echo_reactor
    client = socket.create_connection((LOOPBACK, port), timeout=5)
    turn_until(
        reactor,
        lambda: any(isinstance(s, WriteThroughServer) for s in reactor._selectables.values()),
    )
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    turn_until(reactor, lambda: ends)
    assert ends == ["ConnectionLost"]


# NetReactor for real, in a process of its own ------------------------------


class Harness:
    """
    C{netreactor_harness.py} running: its port and its status reports.
    """

    def __init__(self, framing: str, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HARNESS), framing, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        assert line.startswith("PORT "), (line, self.stderr())
        self.port = int(line.split()[1])

    def status(self) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"status\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())  # type: ignore[no-any-return]

    def wait_status(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status) or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def stderr(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")

    def close(self) -> str:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        return self.stderr()


@pytest.fixture
def line_server() -> Iterator[Harness]:
    harness = Harness("line")
    yield harness
    harness.close()


def greet(port: int) -> socket.socket:
    client = socket.create_connection((LOOPBACK, port), timeout=10)
    assert client.recv(100) == b"Welcome!\r\n"
    return client


def read_until(client: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    received = 0
    while received < size:
        chunk = client.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def test_large_reply_arrives_complete_and_in_order(line_server: Harness) -> None:
    """
    50,000 pipelined messages whose replies (about 1 MB) cannot all fit in
    the socket buffers, read only after a pause: every reply arrives, in
    order, and the server was on the write-through transport.
    """
    client = greet(line_server.port)
    count = 50_000
    request = b"".join(b"m%06d\n" % i for i in range(count))
    expected = b"".join(b"Hello, m%06d!\r\n" % i for i in range(count))
    sender = threading.Thread(target=client.sendall, args=(request,))
    sender.start()
    time.sleep(0.5)
    received = read_until(client, len(expected))
    sender.join(10)
    status = line_server.status()
    client.close()
    assert received == expected
    assert status["transport"] == "WriteThroughServer"


def test_adopted_port_serves_with_write_through() -> None:
    harness = Harness("line", "adopt")
    try:
        client = greet(harness.port)
        client.sendall(b"Michael\n")
        assert client.recv(100) == b"Hello, Michael!\r\n"
        assert harness.status()["transport"] == "WriteThroughServer"
        client.close()
    finally:
        harness.close()


def test_peer_that_never_reads_is_paused_and_memory_stays_bounded(
    line_server: Harness,
) -> None:
    """
    A peer that sends and never reads: the server stops reading from it
    (the protocol's C{pauseProducing} is called) and holds a bounded amount
    unsent, however long the peer keeps trying.
    """
    before = line_server.status()["rss_kb"]
    client = greet(line_server.port)
    client.setblocking(False)
    chunk = b"x" * 1000 + b"\n"
    pushed = 0
    deadline = time.monotonic() + 5
    progress = time.monotonic()
    while time.monotonic() - progress < 0.5 and time.monotonic() < deadline:
        try:
            pushed += client.send(chunk * 64)
            progress = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    status = line_server.wait_status(lambda s: s["paused"] == 1)
    client.close()
    assert status["paused"] == 1
    assert status["unsent"] < 1_000_000
    assert status["rss_kb"] - before < 50_000
    assert time.monotonic() < deadline  # the peer was stopped, not the clock


def test_resets_while_writing_do_not_hurt_the_server(line_server: Harness) -> None:
    """
    Peers that pipeline a lot and then reset the connection while the
    server is writing to them: the server logs no error and still answers.
    """
    request = b"".join(b"m%06d\n" % i for i in range(20_000))
    for _ in range(20):
        client = greet(line_server.port)
        client.sendall(request[: 64 * 1024])
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    status = line_server.wait_status(lambda s: s["sessions"] == 0)
    assert status["sessions"] == 0
    client = greet(line_server.port)
    client.sendall(b"Sarah\n")
    assert client.recv(100) == b"Hello, Sarah!\r\n"
    client.close()
    assert "Traceback" not in line_server.close()


# The installed twist net on it ---------------------------------------------


@pytest.mark.parametrize("twist_options", [[], ["--reactor", "netepoll"]])
def test_twist_net_runs_on_net_reactor(twist_net: Any, twist_options: list[str]) -> None:
    """
    C{twist net} picks the netepoll reactor by default, C{--reactor
    netepoll} names it, and either way it answers.
    """
    server = twist_net(
        ["--listen", f"tcp:0:interface={LOOPBACK}", "--udp", f"{LOOPBACK}:0"],
        twist_options=twist_options,
    )
    starting = server.wait_for(lambda e: e.get("event") == "starting")
    assert starting["reactor"] == "twisted_net.netepoll.reactor.NetReactor"
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as client:
        assert client.recv(100) == b"Welcome!"
        client.sendall(b"Tracy")
        assert client.recv(100) == b"Hello, Tracy!"
    assert server.stop() in (0, -15)


def test_twist_with_another_reactor_keeps_it(twist_net: Any) -> None:
    server = twist_net(
        ["--listen", f"tcp:0:interface={LOOPBACK}", "--no-udp"],
        twist_options=["--reactor", "epoll"],
    )
    starting = server.wait_for(lambda e: e.get("event") == "starting")
    assert starting["reactor"] == "twisted.internet.epollreactor.EPollReactor"
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as client:
        assert client.recv(100) == b"Welcome!"
    assert server.stop() in (0, -15)


@pytest.mark.parametrize("handler", ["sigTerm", "sigInt"])
def test_second_stop_signal_is_ignored(handler: str) -> None:
    """
    A second SIGTERM or Ctrl-C while the server is draining queues no
    second C{stop} (which would log a critical C{ReactorNotRunning}), and
    the signal is still recorded for C{twist} to re-raise.
    """
    reactor = NetReactor()
    queued: list[object] = []
    reactor.callFromThread = lambda f, *a, **k: queued.append(f)  # type: ignore[method-assign]
    try:
        getattr(reactor, handler)(15)
        getattr(reactor, handler)(15)
        assert queued == [reactor.stop]
        assert reactor._exitSignal == 15
    finally:
        reactor._poller.close()
