"""
Tests for L{twisted_net.server.datagram}: the UDP protocol and its guards, on a
fake transport and on real sockets on the loopback interface.
"""

from __future__ import annotations

import errno
from collections.abc import Generator
from typing import Any

import pytest
import pytest_twisted
from support import ipv6_loopback_usable
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue, inlineCallbacks
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock

from twisted_net.config import ServerConfig
from twisted_net.server import datagram as datagram_module
from twisted_net.server.datagram import (
    GreetingDatagramProtocol,
    TokenBuckets,
    receive_buffer_size,
)

SOURCE = ("127.0.0.1", 40000)
TOO_LONG = b"error: message longer than 5 bytes\r\n"


class FakeDatagramTransport:
    """
    Records what a datagram protocol sends; optionally fails every send.
    """

    def __init__(self, error: OSError | None = None) -> None:
        self.sent: list[tuple[bytes, Any]] = []
        self.error = error

    def write(self, payload: bytes, addr: Any) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((payload, addr))


def server(
    config: ServerConfig | None = None,
    clock: Clock | None = None,
) -> tuple[GreetingDatagramProtocol, FakeDatagramTransport]:
    protocol = GreetingDatagramProtocol(config, clock=clock or Clock())
    transport = FakeDatagramTransport()
    protocol.transport = transport  # type: ignore[assignment]
    return protocol, transport


_DELIVERY = ["one by one"]


@pytest.fixture(autouse=True, params=["one by one", "in batches"])
def delivery(request: pytest.FixtureRequest) -> Generator[str, None, None]:
    """
    Run every test twice: with datagrams delivered by C{datagramReceived}
    (Twisted's C{udp.Port}) and by C{datagramsReceived} (the batches of
    L{twisted_net.netepoll.udp.LeanDatagramPort}).
    """
    _DELIVERY[0] = request.param
    yield request.param
    _DELIVERY[0] = "one by one"


def deliver(protocol: GreetingDatagramProtocol, datagram: bytes, source: Any) -> None:
    """
    Hand one datagram to C{protocol} the way the current test run does.
    """
    if _DELIVERY[0] == "in batches":
        protocol.datagramsReceived([(datagram, source)])
    else:
        protocol.datagramReceived(datagram, source)


def answers(
    protocol: GreetingDatagramProtocol,
    transport: FakeDatagramTransport,
    datagram: bytes,
    source: tuple[str, int] = SOURCE,
) -> list[bytes]:
    """
    Deliver one datagram; return the payloads sent back to its source.
    """
    transport.sent.clear()
    deliver(protocol, datagram, source)
    assert all(addr == source for _, addr in transport.sent)
    return [payload for payload, _ in transport.sent]


# Answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datagram", "expected"),
    [
        (b"Michael", b"Hello, Michael!"),
        (b"Michael\n", b"Hello, Michael!\n"),
        (b"Michael\r\n", b"Hello, Michael!\r\n"),
        (b"\xff\x00\xfe", b"Hello, \xff\x00\xfe!"),
        (b"", b"Hello, !"),
        (b"exit", b"Hello, exit!"),
        (b"%s%b%", b"Hello, %s%b%!"),
    ],
)
def test_every_datagram_is_answered(datagram: bytes, expected: bytes) -> None:
    """
    Each datagram M gets C{Hello, M!}, with its line ending after the C{!};
    bytes are never decoded; C{exit} is just a message over UDP.
    """
    protocol, transport = server()
    assert answers(protocol, transport, datagram) == [expected]
    assert protocol.counters.datagrams_answered == 1


def test_ipv6_source_is_answered() -> None:
    """
    IPv6 sources are answered like IPv4 ones.
    """
    protocol, transport = server()
    assert answers(protocol, transport, b"M", ("::1", 40000)) == [b"Hello, M!"]


# Guards ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "datagram",
    [b"Hello, Michael!", b"Hello, Michael!\r\n", b"error: message longer than 5 bytes\r\n"],
)
def test_replies_and_errors_are_never_answered(datagram: bytes) -> None:
    """
    A reply or error of this protocol is refused, so two servers can never
    be made to ping-pong.
    """
    protocol, transport = server()
    assert answers(protocol, transport, datagram) == []
    assert protocol.counters.refusals["udp-loop"] == 1


@pytest.mark.parametrize("port", [0, 7, 19, 53, 123])
def test_classic_service_ports_are_never_answered(port: int) -> None:
    """
    Datagrams "from" echo, chargen, DNS, NTP ports (or port 0) are refused.
    """
    protocol, transport = server()
    assert answers(protocol, transport, b"M", ("127.0.0.1", port)) == []
    assert protocol.counters.refusals["udp-source-port"] == 1


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1", "::ffff:224.0.0.1"]
)
def test_unanswerable_sources_are_refused(host: str) -> None:
    """
    Unspecified, multicast and broadcast sources are refused.
    """
    protocol, transport = server()
    assert answers(protocol, transport, b"M", (host, 40000)) == []
    assert protocol.counters.refusals["udp-source-address"] == 1


@pytest.mark.parametrize(
    ("datagram", "expected", "refusal"),
    [
        (b"Hello, M!", [], "udp-loop"),
        (b"Hello, M!\n", [], "udp-loop"),
        (b"error: no", [], "udp-loop"),
        (b"error: x", [], "udp-loop"),
        (b"12345678901", [b"error: message longer than 10 bytes\r\n"], "max-message"),
        (b"M\r\n", [b"Hello, M!\r\n"], None),
        (b"M\nN", [b"Hello, M\nN!"], None),
        (b"eat", [b"Hello, eat!"], None),
        (b"Hi", [b"Hello, Hi!"], None),
        (b"", [b"Hello, !"], None),
    ],
)
def test_a_known_source_still_meets_every_guard(
    datagram: bytes, expected: list[bytes], refusal: str | None
) -> None:
    """
    Once a source was answered (and is remembered as answerable), its
    datagrams still meet the loop and size guards and keep their line
    endings: the shortcut for known sources takes only what it can answer.
    """
    protocol, transport = server(ServerConfig(max_message=10))
    assert answers(protocol, transport, b"first") == [b"Hello, first!"]
    assert answers(protocol, transport, datagram) == expected
    assert dict(protocol.counters.refusals) == ({refusal: 1} if refusal else {})


def test_source_verdicts_stay_bounded() -> None:
    """
    The remembered source verdicts stay bounded under many (forged)
    sources, and forgetting them changes no answer.
    """
    protocol, transport = server()
    protocol.max_sources = 3
    for index in range(20):
        assert answers(protocol, transport, b"M", (f"10.0.0.{index}", 40000)) == [b"Hello, M!"]
        assert answers(protocol, transport, b"M", (f"224.0.0.{index}", 40000)) == []
        assert answers(protocol, transport, b"M", ("10.0.0.1", 40000 + index)) == [b"Hello, M!"]
    assert len(protocol._answerable_sources) <= 3
    assert len(protocol._host_verdicts) <= 3
    assert protocol.counters.refusals["udp-source-address"] == 20
    assert protocol.counters.datagrams_answered == 40


def test_a_host_address_is_parsed_once_whatever_its_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """
    The verdict on a host is worked out once, not once per source port
    (a flood from many ports of one host costs no address parsing).
    """
    parsed: list[str] = []
    real = datagram_module._is_unanswerable_host

    def counting(host: str) -> bool:
        parsed.append(host)
        return real(host)

    monkeypatch.setattr(datagram_module, "_is_unanswerable_host", counting)
    protocol, transport = server()
    for port in range(40000, 40010):
        assert answers(protocol, transport, b"M", ("127.0.0.1", port)) == [b"Hello, M!"]
        assert answers(protocol, transport, b"M", ("224.0.0.1", port)) == []
    assert parsed == ["127.0.0.1", "224.0.0.1"]


def test_long_datagram_gets_an_error_not_a_truncated_reply() -> None:
    """
    A message over C{max_message} gets an error datagram; one at the limit
    is answered (its line ending does not count).
    """
    protocol, transport = server(ServerConfig(max_message=5))
    assert answers(protocol, transport, b"123456") == [TOO_LONG]
    assert answers(protocol, transport, b"12345\r\n") == [b"Hello, 12345!\r\n"]
    assert protocol.counters.refusals["max-message"] == 1


def test_receive_buffer_sees_oversize() -> None:
    """
    The receive buffer is larger than any answerable datagram, so a
    truncated read is always recognised as oversize.
    """
    config = ServerConfig(max_message=5)
    assert receive_buffer_size(config) > len(b"12345\r\n")


def test_rate_limit_per_source_host() -> None:
    """
    A source gets C{udp_burst} answers at once, then C{udp_rate} per
    second; another source is not affected.
    """
    clock = Clock()
    protocol, transport = server(ServerConfig(udp_rate=2.0, udp_burst=3), clock)
    replies = [answers(protocol, transport, b"M") for _ in range(5)]
    assert replies == [[b"Hello, M!"]] * 3 + [[]] * 2
    assert answers(protocol, transport, b"M", ("127.0.0.2", 40000)) == [b"Hello, M!"]
    clock.advance(0.5)
    assert answers(protocol, transport, b"M") == [b"Hello, M!"]
    assert answers(protocol, transport, b"M") == []
    assert protocol.counters.refusals["udp-rate"] == 3


def test_rate_limit_off() -> None:
    """
    C{udp_rate=0} answers every datagram.
    """
    protocol, transport = server(ServerConfig(udp_rate=0, udp_burst=1))
    assert sum(len(answers(protocol, transport, b"M")) for _ in range(50)) == 50


def test_token_buckets_forget_idle_hosts() -> None:
    """
    The bucket table stays bounded under many sources.
    """
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock)
    buckets.max_hosts = 10
    for index in range(100):
        assert buckets.allow(f"10.0.0.{index}")
        clock.advance(1.0)
    assert len(buckets._buckets) <= 10


def test_send_error_is_counted_not_raised() -> None:
    """
    A failing send (e.g. ICMP port unreachable) is counted and never stops
    the protocol.
    """
    protocol = GreetingDatagramProtocol(clock=Clock())
    protocol.transport = FakeDatagramTransport(  # type: ignore[assignment]
        OSError(errno.ECONNREFUSED, "refused")
    )
    deliver(protocol, b"M", SOURCE)
    deliver(protocol, b"M", SOURCE)  # the source is known now: the shortcut
    assert protocol.counters.udp_send_errors == 2
    assert protocol.counters.refusals["udp-send-econnrefused"] == 2
    assert protocol.counters.datagrams_answered == 0
    assert protocol.counters.bytes_in == 2 and protocol.counters.bytes_out == 0


def test_another_port_shares_limits() -> None:
    """
    A protocol for one more port shares counters and per-source rate.
    """
    clock = Clock()
    first, first_transport = server(ServerConfig(udp_rate=1.0, udp_burst=1), clock)
    second = first.for_another_port()
    second_transport = FakeDatagramTransport()
    second.transport = second_transport  # type: ignore[assignment]
    assert answers(first, first_transport, b"M") == [b"Hello, M!"]
    assert answers(second, second_transport, b"M") == []
    assert first.counters is second.counters
    assert first.counters.refusals["udp-rate"] == 1


# Real sockets ------------------------------------------------------------------


class Collector(DatagramProtocol):
    """
    A UDP client that queues every datagram it receives.
    """

    def __init__(self) -> None:
        self.received: DeferredQueue[bytes] = DeferredQueue()

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.put(datagram)

    def next(self, timeout: float = 5.0) -> Deferred[bytes]:
        return self.received.get().addTimeout(timeout, reactor)


@inlineCallbacks
def exchange(
    host: str, config: ServerConfig, datagrams: list[bytes]
) -> Generator[Any, Any, list[bytes]]:
    """
    Send each datagram to a real server port on C{host}; return the
    datagrams received back (one per datagram sent).
    """
    protocol = GreetingDatagramProtocol(config)
    server_port: IListeningPort = reactor.listenUDP(  # type: ignore[attr-defined]
        0, protocol, interface=host, maxPacketSize=receive_buffer_size(config)
    )
    client = Collector()
    client_port: IListeningPort = reactor.listenUDP(  # type: ignore[attr-defined]
        0, client, interface=host
    )
    try:
        address = (host, server_port.getHost().port)  # type: ignore[attr-defined]
        received = []
        for datagram in datagrams:
            client.transport.write(datagram, address)  # type: ignore[union-attr]
            received.append((yield client.next()))
    finally:
        yield server_port.stopListening()
        yield client_port.stopListening()
    return received


@pytest_twisted.inlineCallbacks
def test_real_socket_ipv4() -> Generator[Any, Any, None]:
    """
    Over a real IPv4 socket, every datagram is answered.
    """
    received = yield exchange("127.0.0.1", ServerConfig(), [b"Michael", b"Tracy\n", b"\xff\x00"])
    assert received == [b"Hello, Michael!", b"Hello, Tracy!\n", b"Hello, \xff\x00!"]


@pytest.mark.skipif(not ipv6_loopback_usable(), reason="::1 is not bindable here")
@pytest_twisted.inlineCallbacks
def test_real_socket_ipv6() -> Generator[Any, Any, None]:
    """
    Over a real IPv6 socket, every datagram is answered.
    """
    received = yield exchange("::1", ServerConfig(), [b"Michael", b"Sarah\r\n"])
    assert received == [b"Hello, Michael!", b"Hello, Sarah!\r\n"]


@pytest_twisted.inlineCallbacks
def test_real_socket_oversize_is_refused_not_truncated() -> Generator[Any, Any, None]:
    """
    A datagram far larger than the receive buffer is refused with an error
    datagram, never answered with a truncated reply; the next normal
    datagram is answered.
    """
    received = yield exchange(
        "127.0.0.1",
        ServerConfig(max_message=5),
        [b"x" * 2000, b"123456", b"12345\r\n", b"1234567890\r\n" + b"y" * 100],
    )
    assert received == [TOO_LONG, TOO_LONG, b"Hello, 12345!\r\n", TOO_LONG]
