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

L{twisted_net.server.endpoints.server_endpoint} routes every C{--listen}
string that starts with C{haproxy:} here (L{proxy_header_endpoint}).
"""

from __future__ import annotations

from twisted.internet.interfaces import IAddress, IProtocol, IStreamServerEndpoint
from twisted.protocols.haproxy import proxyEndpoint

from twisted_net.logs import NamedLogger
from twisted_net.server import proxyparsers
from twisted_net.server.gate import GatedEndpoint, GatedFactory, GatedProtocol
from twisted_net.server.proxyparsers import HeaderParser, InvalidHeaderError, ParsedHeader
from twisted_net.server.refusals import PROXY_HEADER, PROXY_TIMEOUT

__all__ = [
    "ProxyHeaderFactory",
    "ProxyHeaderProtocol",
    "proxy_header_endpoint",
]

_log = NamedLogger("twisted_net.proxy")
_warned: list[bool] = []


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
        self.info: ParsedHeader | None = None
        self._head = b""
        self._parser: HeaderParser | None = None

    def data_before_open(self, data: bytes) -> None:
        try:
            remaining = self._feed(data)
        except InvalidHeaderError:
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
            parser = proxyparsers.choose_parser(head)
            if parser is None:
                self._head = head
                return b""
            self._parser = parser
            self._head = b""
            data = head
        info, remaining = proxyparsers.feed(parser, data)
        if info is None:
            return b""
        self.info = info
        self._parser = None
        return remaining

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


def proxy_header_endpoint(inner: IStreamServerEndpoint, description: str) -> IStreamServerEndpoint:
    """
    The endpoint of C{haproxy:INNER}: C{inner} behind L{ProxyHeaderFactory}.

    Where Twisted's private PROXY header parsers have changed
    (L{twisted_net.server.proxyparsers.PROBLEM}), Twisted's public
    C{proxyEndpoint} serves instead, with one warning: clients still get
    their real addresses, but the greeting is no longer held back until the
    header has arrived, and bad headers are not counted as refusals.

    @param description: the inner endpoint string, for the warning.
    """
    problem = proxyparsers.PROBLEM
    if problem is None:
        return GatedEndpoint(inner, ProxyHeaderFactory)
    if not _warned:
        _warned.append(True)
        _log.warn(
            "Twisted's PROXY header parsers have changed ({problem}); haproxy:{endpoint} "
            "uses Twisted's own PROXY wrapper instead",
            event="proxy_parsers_missing",
            problem=problem,
            endpoint=description,
        )
    endpoint: IStreamServerEndpoint = proxyEndpoint(inner)
    return endpoint
