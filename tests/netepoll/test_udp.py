"""
L{twisted_net.netepoll.udp.LeanDatagramPort} on the test reactor and real
loopback sockets: every datagram delivered, in batches to protocols that take
them, with C{udp.Port}'s limits and errors.
"""

from __future__ import annotations

import errno
import itertools
import socket
import time
from collections.abc import Generator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import capturedLogs

from twisted_net.netepoll.udp import LeanDatagramPort

LOOPBACK = "127.0.0.1"


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
