"""
Tests for L{twisted_net.server.proxyparsers}, the one module that uses
Twisted's private PROXY header parsers, and for the fallback to Twisted's
public C{proxyEndpoint} when they change.
"""

from __future__ import annotations

import importlib

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.logger import capturedLogs
from twisted.protocols.haproxy import _v1parser, _v2parser

from twisted_net.server import proxy, proxyparsers
from twisted_net.server.endpoints import server_endpoint
from twisted_net.server.gate import GatedEndpoint
from twisted_net.server.proxyparsers import InvalidHeaderError

SERVER = IPv4Address("TCP", "127.0.0.1", 9999)
BALANCER = IPv4Address("TCP", "10.9.9.9", 40000)


def test_parsers_pass_their_check() -> None:
    """
    On the Twisted installed, the parsers are there and parse as expected.
    """
    assert proxyparsers.PROBLEM is None
    parser = proxyparsers.choose_parser(b"PROXY TCP4 ")
    assert parser is not None
    info, rest = proxyparsers.feed(parser, b"PROXY TCP4 1.2.3.4 5.6.7.8 10 20\r\nhi")
    assert info is not None and info.source == IPv4Address("TCP", "1.2.3.4", 10)
    assert rest == b"hi"
    parser = proxyparsers.choose_parser(b"PROXY ")
    assert parser is not None
    with pytest.raises(InvalidHeaderError):
        proxyparsers.feed(parser, b"PROXY NONSENSE\r\n")
    with pytest.raises(InvalidHeaderError):
        proxyparsers.choose_parser(b"GET / HTTP/1.0\r\n")


@pytest.mark.parametrize(
    ("module", "name", "value"),
    [
        (_v1parser.V1Parser, "PROXYSTR", b"PROXX"),
        (_v2parser.V2Parser, "PREFIX", b"short"),
        (_v1parser.V1Parser, "feed", lambda self, data: (None, None)),
        (_v2parser.V2Parser, "feed", lambda self, data: (None, None)),
        (_v1parser, "V1Parser", None),
    ],
)
def test_check_notices_changes(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, value: object
) -> None:
    """
    A renamed class, a changed constant or a method that no longer parses
    makes the check fail, so that the parsers are not used.
    """
    if value is None:
        monkeypatch.delattr(module, name)
    else:
        monkeypatch.setattr(module, name, value)
    with pytest.raises(Exception):  # noqa: B017 (any failure will do)
        proxyparsers._load()


def test_a_missing_module_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_v2(name: str, *args: object) -> object:
        if name.endswith("_v2parser"):
            raise ModuleNotFoundError(name)
        return real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib, "import_module", without_v2)
    with pytest.raises(ModuleNotFoundError):
        proxyparsers._load()


def test_fallback_to_twisted_proxy_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    When the parsers have changed, C{haproxy:} endpoints use Twisted's own
    PROXY wrapper, with one warning naming the problem: the protocol still
    sees the client named by the header once it has arrived (but, the
    extra this loses, is connected before, seeing the balancer).
    """
    monkeypatch.setattr(proxyparsers, "PROBLEM", "AttributeError: V1Parser")
    monkeypatch.setattr(proxy, "_warned", [])
    reactor = MemoryReactor()
    with capturedLogs() as events:
        endpoint = server_endpoint(reactor, "haproxy:tcp:0")
        server_endpoint(reactor, "haproxy:tcp:1")
    assert not isinstance(endpoint, GatedEndpoint)
    warnings = [e for e in events if e.get("event") == "proxy_parsers_missing"]
    assert len(warnings) == 1
    assert warnings[0]["problem"] == "AttributeError: V1Parser"
    assert warnings[0]["log_namespace"] == "twisted_net.proxy"

    peers: list[object] = []
    connected: list[Protocol] = []

    class Recorder(Protocol):
        def connectionMade(self) -> None:
            connected.append(self)
            peers.append(self.transport.getPeer())  # type: ignore[union-attr]

    endpoint.listen(Factory.forProtocol(Recorder))
    factory = reactor.tcpServers[0][1]
    protocol = factory.buildProtocol(BALANCER)
    protocol.makeConnection(StringTransport(hostAddress=SERVER, peerAddress=BALANCER))
    protocol.dataReceived(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 9999\r\n")
    assert peers == [BALANCER]
    assert connected[0].transport.getPeer() == IPv4Address("TCP", "203.0.113.7", 5555)  # type: ignore[union-attr]


def test_no_warning_while_parsers_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy, "_warned", [])
    with capturedLogs() as events:
        endpoint = server_endpoint(MemoryReactor(), "haproxy:tcp:0")
    assert isinstance(endpoint, GatedEndpoint)
    assert not [e for e in events if e.get("event") == "proxy_parsers_missing"]
