"""
The PROXY protocol (HAProxy, nginx C{proxy_protocol}) in front of the TCP
server, done so that the server only ever sees the real client.

Twisted's own C{haproxy:} endpoint connects the wrapped protocol when the
TCP connection opens, before the PROXY header has arrived, so
C{connectionMade} (and with it the connection log line and the per-peer
limit) sees the load balancer's address.  L{ProxyHeaderProtocol} instead
holds the wrapped protocol back until the header is parsed, then connects
it with the real client's address as its peer.  A connection that sends no
valid header within L{ProxyHeaderFactory.header_timeout} seconds is
refused (counted as C{proxy-header} or C{proxy-timeout}).

C{StreamListener} uses L{server_endpoint}, which routes every C{--listen}
string that starts with C{haproxy:} here.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHalfCloseableProtocol,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._info import ProxyInfo
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from .address import format_address

__all__ = [
    "PROXY_PREFIX",
    "ProxyHeaderProtocol",
    "ProxyHeaderFactory",
    "ProxyHeaderEndpoint",
    "server_endpoint",
]

PROXY_PREFIX = "haproxy:"
"""The C{--listen} prefix that puts the PROXY protocol in front of an endpoint."""

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


@implementer(IHalfCloseableProtocol)
class ProxyHeaderProtocol(ProtocolWrapper):
    """
    Read the PROXY header (version 1 or 2), then connect the wrapped
    protocol, with this wrapper as its transport: C{getPeer} and C{getHost}
    give the addresses from the header (the transport's own for a C{LOCAL}
    or C{UNKNOWN} header, as health checks send).

    After the header, each read costs one extra call into the wrapped
    protocol; half-close is passed on when the wrapped protocol supports it.
    """

    factory: ProxyHeaderFactory

    def __init__(self, factory: ProxyHeaderFactory, wrappedProtocol: IProtocol) -> None:
        super().__init__(factory, wrappedProtocol)
        self.info: ProxyInfo | None = None
        self._head = b""
        self._parser: V1Parser | V2Parser | None = None
        self._connected = False
        self._deadline: IDelayedCall | None = None

    def makeConnection(self, transport: Any) -> None:
        """
        Take the transport, but keep the wrapped protocol waiting for the
        header (and start the header deadline).
        """
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        self._deadline = self.factory.clock.callLater(
            self.factory.header_timeout, self._header_timed_out
        )

    def dataReceived(self, data: bytes) -> None:
        if self._connected:
            self.wrappedProtocol.dataReceived(data)
            return
        if self.disconnecting:
            return
        try:
            remaining = self._feed(data)
        except InvalidProxyHeader:
            self._refuse("proxy-header")
            return
        if self.info is None:
            return
        self._connect_wrapped()
        if remaining and self._connected:
            self.wrappedProtocol.dataReceived(remaining)

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

    def _connect_wrapped(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        self._connected = True
        self.wrappedProtocol.makeConnection(self)

    def _header_timed_out(self) -> None:
        self._deadline = None
        self._refuse("proxy-timeout")

    def _refuse(self, reason: str) -> None:
        refusals = getattr(self.factory.wrappedFactory, "refusals", None)
        if refusals is not None:
            refusals.refuse(reason, format_address(self.transport.getPeer()))  # type: ignore[union-attr]
        else:
            self.factory.log.warn(
                "Refused {peer}: {reason}",
                event="refused",
                peer=format_address(self.transport.getPeer()),  # type: ignore[union-attr]
                reason=reason,
            )
        self.disconnecting = 1
        self.transport.abortConnection()  # type: ignore[union-attr]

    # Addresses: the client's, once the header said so ------------------

    def getPeer(self) -> IAddress:
        if self.info is not None and self.info.source is not None:
            return self.info.source
        return self.transport.getPeer()  # type: ignore[union-attr,no-any-return]

    def getHost(self) -> IAddress:
        if self.info is not None and self.info.destination is not None:
            return self.info.destination
        return self.transport.getHost()  # type: ignore[union-attr,no-any-return]

    # Closing -------------------------------------------------------------

    def readConnectionLost(self) -> None:
        if self._connected and IHalfCloseableProtocol.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.readConnectionLost()
        else:
            self.loseConnection()

    def writeConnectionLost(self) -> None:
        if self._connected and IHalfCloseableProtocol.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.writeConnectionLost()
        else:
            self.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        self.factory.unregisterProtocol(self)
        if self._connected:
            self.wrappedProtocol.connectionLost(reason)
        self.wrappedProtocol = None


class ProxyHeaderFactory(WrappingFactory):
    """
    Wrap a server factory so that its protocols see the client named by the
    PROXY header.

    @ivar header_timeout: seconds a new connection has to send its header.
    @ivar clock: where the header deadlines are scheduled.
    """

    protocol = ProxyHeaderProtocol
    noisy = False
    log = Logger(namespace="twisted_net")

    def __init__(
        self,
        wrappedFactory: IProtocolFactory,
        clock: IReactorTime | None = None,
        header_timeout: float = 10.0,
    ) -> None:
        super().__init__(wrappedFactory)
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        assert clock is not None
        self.clock = clock
        self.header_timeout = header_timeout

    def logPrefix(self) -> str:
        return f"{super().logPrefix()} (PROXY)"


@implementer(IStreamServerEndpoint)
class ProxyHeaderEndpoint:
    """
    A server endpoint whose connections start with a PROXY header.
    """

    def __init__(
        self,
        wrapped: IStreamServerEndpoint,
        clock: IReactorTime | None = None,
        header_timeout: float = 10.0,
    ) -> None:
        self.wrapped = wrapped
        self.clock = clock
        self.header_timeout = header_timeout

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        return self.wrapped.listen(  # type: ignore[no-any-return]
            ProxyHeaderFactory(protocolFactory, self.clock, self.header_timeout)
        )


def server_endpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    Parse a C{--listen} string like Twisted's C{serverFromString}, except
    that C{haproxy:INNER} gives a L{ProxyHeaderEndpoint} around C{INNER}.
    """
    if description.startswith(PROXY_PREFIX):
        inner = serverFromString(reactor, description[len(PROXY_PREFIX):])
        return ProxyHeaderEndpoint(inner, reactor)
    return serverFromString(reactor, description)  # type: ignore[no-any-return]
