"""
The PROXY protocol wrapper (L{twisted_net.server.proxy}), in memory: the greeting
protocol is connected only once the header is parsed, and then sees the real
client's address, in its logs and in its per-peer limit.
"""

from __future__ import annotations

import socket
import struct

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, globalLogPublisher

from twisted_net.config import ServerConfig
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.proxy import ProxyHeaderFactory

BALANCER = IPv4Address("TCP", "10.9.9.9", 40000)
SERVER = IPv4Address("TCP", "127.0.0.1", 9999)


def v1_header(source: str, port: int, family: str = "TCP4", dest: str = "127.0.0.1") -> bytes:
    return f"PROXY {family} {source} {dest} {port} 9999\r\n".encode("ascii")


def v2_header(source: str, port: int, command: int = 0x21) -> bytes:
    if command == 0x20:
        return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    body = socket.inet_aton(source) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", port, 9999)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([command, 0x11]) + struct.pack("!H", len(body)) + body


class Harness:
    def __init__(self, config: ServerConfig | None = None, framing: str = "line") -> None:
        self.clock = Clock()
        self.inner = GreetingFactory(framing, config or ServerConfig(), clock=self.clock)
        self.factory = ProxyHeaderFactory(self.inner, self.clock, timeout=5.0)
        self.factory.doStart()

    def connect(self) -> tuple[object, StringTransport]:
        protocol = self.factory.buildProtocol(SERVER)
        assert protocol is not None
        transport = StringTransport(hostAddress=SERVER, peerAddress=BALANCER)
        protocol.makeConnection(transport)
        return protocol, transport

    def stop(self) -> None:
        self.factory.doStop()


@pytest.fixture
def harness() -> Harness:
    h = Harness()
    yield h
    h.stop()


@pytest.fixture
def events() -> list[LogEvent]:
    seen: list[LogEvent] = []
    globalLogPublisher.addObserver(seen.append)
    yield seen
    globalLogPublisher.removeObserver(seen.append)


def test_greeting_waits_for_header(harness: Harness) -> None:
    """
    Nothing is sent and no connection is counted until the header arrives.
    """
    protocol, transport = harness.connect()
    assert transport.value() == b""
    assert harness.inner.counters.connections_total == 0
    protocol.dataReceived(v1_header("203.0.113.7", 5555))
    assert transport.value() == b"Welcome!\r\n"
    assert harness.inner.counters.connections_total == 1


def test_real_client_address_logged(harness: Harness, events: list[LogEvent]) -> None:
    """
    The connection log line and the protocol's peer name the client from
    the header, not the balancer.
    """
    protocol, transport = harness.connect()
    protocol.dataReceived(v1_header("203.0.113.7", 5555) + b"Michael\n")
    assert transport.value() == b"Welcome!\r\nHello, Michael!\r\n"
    opened = [e for e in events if e.get("event") == "connection_opened"]
    assert [e["peer"] for e in opened] == ["203.0.113.7:5555"]
    session = next(iter(harness.inner.sessions))
    assert session.peer == "203.0.113.7:5555"
    assert protocol.getPeer() == IPv4Address("TCP", "203.0.113.7", 5555)


@pytest.mark.parametrize("make_header", [v1_header, v2_header])
def test_header_byte_by_byte(harness: Harness, make_header) -> None:
    """
    A header split into single bytes (v1 and v2) is still recognised.
    """
    protocol, transport = harness.connect()
    for index, byte in enumerate(make_header("198.51.100.2", 6000) + b"Tracy\n"):
        protocol.dataReceived(bytes([byte]))
        if index < 10:
            assert transport.value() == b""
    assert transport.value() == b"Welcome!\r\nHello, Tracy!\r\n"
    assert next(iter(harness.inner.sessions)).peer == "198.51.100.2:6000"


def test_ipv6_client() -> None:
    """
    A TCP6 header gives an IPv6 peer, printed in brackets.
    """
    h = Harness()
    protocol, _ = h.connect()
    protocol.dataReceived(v1_header("2001:db8::1", 7000, "TCP6", "::1"))
    assert protocol.getPeer() == IPv6Address("TCP", "2001:db8::1", 7000)
    assert next(iter(h.inner.sessions)).peer == "[2001:db8::1]:7000"
    h.stop()


@pytest.mark.parametrize(
    "header",
    [v2_header("0.0.0.0", 0, command=0x20), b"PROXY UNKNOWN ::1 ::1 1 2\r\n"],
    ids=["v2-local", "v1-unknown"],
)
def test_health_check_header_closed_quietly(
    harness: Harness, events: list[LogEvent], header: bytes
) -> None:
    """
    A v2 C{LOCAL} or v1 C{UNKNOWN} header (what HAProxy's health checks send
    with C{send-proxy-v2}) relays no client: the server closes without a
    greeting, opens no session, logs nothing and counts a health check.
    """
    protocol, transport = harness.connect()
    protocol.dataReceived(header)
    assert transport.value() == b""
    assert transport.disconnecting
    assert not harness.inner.sessions
    assert harness.inner.counters.health_checks == 1
    assert harness.inner.counters.connections_total == 0
    assert not [e for e in events if e.get("event") in ("connection_opened", "refused")]


def test_per_peer_limit_counts_real_clients() -> None:
    """
    With C{max_per_peer=1}, two clients behind the same balancer are both
    admitted; a second connection of one of them is refused.
    """
    h = Harness(ServerConfig(max_per_peer=1))
    first, first_transport = h.connect()
    first.dataReceived(v1_header("203.0.113.1", 1001))
    second, second_transport = h.connect()
    second.dataReceived(v1_header("203.0.113.2", 1002))
    third, third_transport = h.connect()
    third.dataReceived(v1_header("203.0.113.1", 1003))
    assert first_transport.value() == b"Welcome!\r\n"
    assert second_transport.value() == b"Welcome!\r\n"
    assert third_transport.value() == b"error: server busy\r\n"
    assert h.inner.counters.refusals["max-per-peer"] == 1
    h.stop()


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.0\r\n", b"Michael", b"PROXY NONSENSE\r\n"])
def test_invalid_header_refused(harness: Harness, events: list[LogEvent], garbage: bytes) -> None:
    """
    Anything but a PROXY header closes the connection, counted and logged
    as C{proxy-header}; the greeting protocol never sees the connection.
    """
    protocol, transport = harness.connect()
    protocol.dataReceived(garbage)
    assert transport.disconnecting
    assert transport.value() == b""
    protocol.connectionLost(None)  # type: ignore[arg-type]
    counters = harness.inner.counters
    assert counters.refusals["proxy-header"] == 1
    assert counters.connections_total == 0 and counters.connections_open == 0
    refused = [e for e in events if e.get("event") == "refused"]
    assert refused[0]["reason"] == "proxy-header"
    assert refused[0]["peer"] == "10.9.9.9:40000"


def test_header_timeout(harness: Harness) -> None:
    """
    A connection that sends no header is closed after C{header_timeout}
    seconds and counted as C{proxy-timeout}; one that does is not.
    """
    silent, silent_transport = harness.connect()
    talker, talker_transport = harness.connect()
    talker.dataReceived(v1_header("203.0.113.9", 9000))
    harness.clock.advance(4.9)
    assert not silent_transport.disconnecting
    harness.clock.advance(0.2)
    assert silent_transport.disconnecting
    assert not talker_transport.disconnecting
    assert harness.inner.counters.refusals == {"proxy-timeout": 1}
    silent.connectionLost(None)  # type: ignore[arg-type]
    pending = [getattr(call.func, "__name__", "") for call in harness.clock.getDelayedCalls()]
    assert "_header_timed_out" not in pending


def test_half_close_passed_on(harness: Harness) -> None:
    """
    A client half-close reaches the line protocol, which answers the last
    unterminated line and then closes.
    """
    protocol, transport = harness.connect()
    protocol.dataReceived(v1_header("203.0.113.7", 5555) + b"Sarah")
    protocol.readConnectionLost()
    assert transport.value() == b"Welcome!\r\nHello, Sarah!\r\n"
    assert transport.disconnecting


def test_connection_lost_after_header_releases_session(harness: Harness) -> None:
    """
    Closing after the header releases the session (capacity comes back).
    """
    protocol, _ = harness.connect()
    protocol.dataReceived(v1_header("203.0.113.7", 5555))
    assert harness.inner.counters.connections_open == 1
    protocol.connectionLost(None)  # type: ignore[arg-type]
    assert harness.inner.counters.connections_open == 0
    assert not harness.inner.sessions


def test_gate_timeout_follows_short_idle_timeout() -> None:
    """
    The header deadline is the server's idle timeout when that is shorter.
    """
    clock = Clock()
    inner = GreetingFactory("line", ServerConfig(idle_timeout=2.0), clock=clock)
    assert ProxyHeaderFactory(inner, clock).timeout == 2.0
    inner = GreetingFactory("line", ServerConfig(idle_timeout=0), clock=clock)
    assert ProxyHeaderFactory(inner, clock).timeout == 10.0
