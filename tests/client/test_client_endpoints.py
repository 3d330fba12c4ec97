"""
Tests of the one address form (L{twisted_net.address.parse_host_port}) and
of L{twisted_net.client.endpoints.client_endpoint}, which reads it or a
Twisted client endpoint string.
"""

from __future__ import annotations

import pytest
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, UNIXClientEndpoint
from twisted.internet.testing import MemoryReactorClock

from twisted_net.address import parse_host_port
from twisted_net.client.endpoints import client_endpoint
from twisted_net.udpaddress import parse_udp_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9999", ("127.0.0.1", 9999)),
        ("127.0.0.1:9999", ("127.0.0.1", 9999)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:9999", ("::1", 9999)),
        ("[fe80::1%lo]:1", ("fe80::1%lo", 1)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("::1:9999", "put IPv6 hosts in brackets"),
        ("[::1]9999", "use [IPV6]:PORT"),
        ("[nope]:1", "'nope' is not an IPv6 address"),
        (":9999", "the host before ':' is empty"),
        ("localhost:abc", "port 'abc' is not a number"),
        ("localhost:0", "port must be 1 to 65535"),
        ("localhost:99999", "port must be 1 to 65535"),
    ],
)
def test_parse_host_port_errors(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_host_port(text)
    assert str(raised.value).startswith(f"bad address {text!r}: {problem}")


def test_udp_address_is_the_same_parser_with_port_zero() -> None:
    """
    The server's C{--udp} keeps its own defaults (any address, port 0
    allowed) and its own name in errors.
    """
    assert parse_udp_address("0") == ("0.0.0.0", 0)
    assert parse_udp_address("[::1]:0", numeric=True) == ("::1", 0)
    with pytest.raises(ValueError, match="bad UDP address 'x:1': 'x' is not an IP address"):
        parse_udp_address("x:1", numeric=True)


@pytest.mark.parametrize("text", ["127.0.0.1:9999", "[::1]:9999", "localhost:9999", "9999"])
def test_host_port_is_a_tcp_endpoint(text: str) -> None:
    assert isinstance(client_endpoint(MemoryReactorClock(), text), HostnameEndpoint)


def test_endpoint_strings_still_work() -> None:
    reactor = MemoryReactorClock()
    assert isinstance(client_endpoint(reactor, "tcp:127.0.0.1:9999"), TCP4ClientEndpoint)
    assert isinstance(client_endpoint(reactor, r"tcp:host=\:\:1:port=9999"), TCP4ClientEndpoint)
    assert isinstance(client_endpoint(reactor, "unix:/tmp/x.sock"), UNIXClientEndpoint)
    assert isinstance(client_endpoint(reactor, "unix:9999"), UNIXClientEndpoint)


def test_host_port_connects_where_it_says() -> None:
    reactor = MemoryReactorClock()
    client_endpoint(reactor, "127.0.0.1:9999").connect(None)  # type: ignore[arg-type]
    reactor.advance(1)
    assert [(host, port) for host, port, *_ in reactor.tcpClients] == [("127.0.0.1", 9999)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tcp:127.0.0.1:99999", "port 99999 is out of range (1 to 65535)"),
        ("tcp:host=127.0.0.1:port=0", "port 0 is out of range (1 to 65535)"),
        ("tls:localhost:70000", "port 70000 is out of range (1 to 65535)"),
        ("tcp:127.0.0.1:abc", "'abc' is not a number"),
        ("tcp:host=::1:port=9999", r"host given twice (escape each ':' of an IPv6 address"),
        ("tcp:127.0.0.1:1:timeout=-1", "timeout must be 0 or more seconds"),
        ("127.0.0.1:99999", "port must be 1 to 65535"),
        ("[::1]:x", "port 'x' is not a number"),
        ("bogus:1", "Unknown endpoint type: 'bogus'; expected one of tcp:HOST:PORT"),
    ],
)
def test_bad_endpoints_are_refused_before_connecting(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        client_endpoint(MemoryReactorClock(), text)
    message = str(raised.value)
    assert message.startswith(f"bad endpoint {text!r}: {problem}")
    for python_word in ("Error", "int()", "__init__", "argument"):
        assert python_word not in message
