"""
The PROXY protocol (HAProxy, nginx C{proxy_protocol}) in front of the TCP
server, done so that the server only ever sees the real client.

Twisted's own C{haproxy:} endpoint connects the wrapped protocol when the
TCP connection opens, before the PROXY header has arrived, so
C{connectionMade} (and with it the connection log line and the per-peer
limit) sees the load balancer's address.  L{ProxyHeaderProtocol} instead
holds the wrapped protocol back until the header is parsed, then connects
it with the real client's address as its peer.  A connection that sends no
valid header within the gate's deadline (L{twisted_net.server.gate}) is refused
(counted as C{proxy-header} or C{proxy-timeout}).

C{StreamListener} uses L{server_endpoint}, which routes every C{--listen}
string that starts with C{haproxy:} here.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IStreamServerEndpoint,
)
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._info import ProxyInfo
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser

from twisted_net.server.gate import GatedEndpoint, GatedFactory, GatedProtocol, HandshakeGateFactory
from twisted_net.server.refusals import PROXY_HEADER, PROXY_TIMEOUT

__all__ = [
    "PROXY_PREFIX",
    "TLS_PREFIX",
    "ProxyHeaderFactory",
    "ProxyHeaderProtocol",
    "server_endpoint",
]

PROXY_PREFIX = "haproxy:"
"""The C{--listen} prefix that puts the PROXY protocol in front of an endpoint."""

TLS_PREFIX = "ssl:"
"""The C{--listen} prefix of TLS endpoints, held back until the handshake."""

_V1_SIGNATURE = V1Parser.PROXYSTR
_V2_SIGNATURE = V2Parser.PREFIX
_V2_FIXED_HEADER = 16


def _choose_parser(head: bytes) -> V1Parser | V2Parser | None:
    """
    Pick the parser for the first bytes of a connection.

    @return: a parser, or C{None} while C{head} is too short to decide.
    @raise InvalidProxyHeader: C{head} is not the start of a PROXY header.
    """
    if _V2_SIGNATURE.startswith(head[: len(_V2_SIGNATURE)]):
        if len(head) < _V2_FIXED_HEADER:
            return None
        if head[12] & 0xF0 != 0x20:
            raise InvalidProxyHeader()
        return V2Parser()
    if _V1_SIGNATURE.startswith(head[: len(_V1_SIGNATURE)]):
        if len(head) < len(_V1_SIGNATURE):
            return None
        return V1Parser()
    raise InvalidProxyHeader()


class ProxyHeaderProtocol(GatedProtocol):
    """
    Read the PROXY header (version 1 or 2), then connect the wrapped
    protocol, with this wrapper as its transport: C{getPeer} and C{getHost}
    give the addresses from the header (the transport's own for a C{LOCAL}
    or C{UNKNOWN} header, as health checks send).
    """

    timeout_reason = PROXY_TIMEOUT
    factory: ProxyHeaderFactory

    def __init__(self, factory: ProxyHeaderFactory, wrappedProtocol: IProtocol) -> None:
        super().__init__(factory, wrappedProtocol)
        self.info: ProxyInfo | None = None
        self._head = b""
        self._parser: V1Parser | V2Parser | None = None

    def data_before_open(self, data: bytes) -> None:
        try:
            remaining = self._feed(data)
        except InvalidProxyHeader:
            self.refuse(PROXY_HEADER)
            return
        if self.info is None:
            return
        if self.info.source is None:
            self._close_health_check()
            return
        self.open_gate()
        if remaining and self.opened:
            self.wrappedProtocol.dataReceived(remaining)

    def _close_health_check(self) -> None:
        """
        A C{LOCAL} (v2) or C{UNKNOWN} (v1) header relays no client: it is
        the balancer's own health check.  It has reached a live server, so
        close quietly: no greeting, no session, no log line; it is counted
        in C{Counters.health_checks}.
        """
        self.factory.health_check()
        self.disconnecting = 1
        self._cancel_deadline()
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _feed(self, data: bytes) -> bytes:
        parser = self._parser
        if parser is None:
            head = self._head + data
            parser = _choose_parser(head)
            if parser is None:
                self._head = head
                return b""
            self._parser = parser
            self._head = b""
            data = head
        info, remaining = parser.feed(data)
        if info is None:
            return b""
        self.info = info
        self._parser = None
        return remaining or b""

    def getPeer(self) -> IAddress:
        if self.info is not None and self.info.source is not None:
            return self.info.source
        return self.transport.getPeer()  # type: ignore[union-attr]

    def getHost(self) -> IAddress:
        if self.info is not None and self.info.destination is not None:
            return self.info.destination
        return self.transport.getHost()  # type: ignore[union-attr]


class ProxyHeaderFactory(GatedFactory):
    """
    Wrap a server factory so that its protocols see the client named by the
    PROXY header.
    """

    protocol = ProxyHeaderProtocol

    def health_check(self) -> None:
        """
        Count one health check of the balancer in front.
        """
        counters = getattr(self.wrappedFactory, "counters", None)
        if counters is not None:
            counters.health_checks += 1

    def logPrefix(self) -> str:
        return f"{super().logPrefix()} (PROXY)"


def server_endpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    Parse a C{--listen} string like Twisted's C{serverFromString}, except
    that the greeting protocol is held back until the connection is open:
    C{haproxy:INNER} waits for the PROXY header (L{ProxyHeaderFactory}),
    C{ssl:...} for the TLS handshake (L{HandshakeGateFactory}).
    """
    if description.startswith(PROXY_PREFIX):
        inner = serverFromString(reactor, description[len(PROXY_PREFIX) :])
        return GatedEndpoint(inner, ProxyHeaderFactory)
    endpoint = serverFromString(reactor, description)
    if description.startswith(TLS_PREFIX):
        return GatedEndpoint(endpoint, HandshakeGateFactory)
    return endpoint  # type: ignore[no-any-return]
