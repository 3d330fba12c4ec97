"""
Hold a protocol back until its connection is really open.

Some layers run before the greeting protocol may see a connection: the TLS
handshake, or the PROXY header a load balancer sends first.  Twisted's TLS
and C{haproxy:} wrappers connect the wrapped protocol when the TCP
connection opens, so the greeting is written (and, with TLS, buffered, which
pauses the protocol as a producer, so that it stops reading and the
handshake never completes) and the connection is admitted, logged and
counted against per-peer limits before anybody knows who the peer is.

L{GatedProtocol} instead calls the wrapped protocol's C{makeConnection}
only when its subclass opens the gate, and refuses (counts, logs at a bounded
rate, aborts) a connection that does not get there before its deadline.
L{HandshakeGate} opens when the TLS handshake completes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from twisted_net.address import format_address
from twisted_net.logs import NamedLogger
from twisted_net.server.refusals import TLS_HANDSHAKE, TLS_TIMEOUT

__all__ = [
    "DEFAULT_GATE_TIMEOUT",
    "GatedEndpoint",
    "GatedFactory",
    "GatedProtocol",
    "HandshakeGate",
    "HandshakeGateFactory",
]

DEFAULT_GATE_TIMEOUT = 10.0
"""Seconds a connection has to get through the gate (the server's
C{idle_timeout} when that is shorter)."""


@implementer(IHalfCloseableProtocol)
class GatedProtocol(ProtocolWrapper):
    """
    A wrapper that connects its wrapped protocol only in L{open_gate}, and
    then acts as its transport.  After that, each read costs one extra call;
    half-close is passed on when the wrapped protocol supports it.

    @cvar timeout_reason: the refusal counted when the deadline passes.
    """

    timeout_reason: ClassVar[str] = "gate-timeout"
    factory: GatedFactory

    def __init__(self, factory: GatedFactory, wrappedProtocol: IProtocol) -> None:
        super().__init__(factory, wrappedProtocol)
        self.opened = False
        self._deadline: IDelayedCall | None = None

    def makeConnection(self, transport: Any) -> None:
        """
        Take the transport and start the deadline; the wrapped protocol waits.
        """
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        self._deadline = self.factory.clock.callLater(self.factory.timeout, self._timed_out)

    def open_gate(self) -> None:
        """
        The connection is ready: connect the wrapped protocol to this wrapper.
        """
        if self.opened or self.disconnecting:
            return
        self._cancel_deadline()
        self.opened = True
        # This wrapper provides the transport's interfaces (directlyProvides
        # in makeConnection), as Twisted's own ProtocolWrapper does.
        self.wrappedProtocol.makeConnection(self)  # type: ignore[arg-type]

    def dataReceived(self, data: bytes) -> None:
        if self.opened:
            self.wrappedProtocol.dataReceived(data)
        elif not self.disconnecting:
            self.data_before_open(data)

    def data_before_open(self, data: bytes) -> None:
        """
        Bytes that arrive while the gate is shut; by default they open it.
        """
        self.open_gate()
        if self.opened:
            self.wrappedProtocol.dataReceived(data)

    def refuse(self, reason: str) -> None:
        """
        Count and log a refusal for this connection's peer, and drop it.
        """
        self.factory.refuse(reason, format_address(self.transport.getPeer()))  # type: ignore[union-attr]
        self.disconnecting = 1
        self._cancel_deadline()
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _timed_out(self) -> None:
        self._deadline = None
        self.refuse(self.timeout_reason)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def readConnectionLost(self) -> None:
        if self.opened and IHalfCloseableProtocol.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.readConnectionLost()
        else:
            self.loseConnection()

    def writeConnectionLost(self) -> None:
        if self.opened and IHalfCloseableProtocol.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.writeConnectionLost()
        else:
            self.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_deadline()
        self.factory.unregisterProtocol(self)
        if self.opened:
            self.wrappedProtocol.connectionLost(reason)
        else:
            self.lost_before_open(reason)
        self.wrappedProtocol = None  # type: ignore[assignment]  # break the cycle

    def lost_before_open(self, reason: Failure) -> None:
        """
        The connection closed while the gate was shut.
        """


class GatedFactory(WrappingFactory[GatedProtocol]):
    """
    Wrap a server factory so that its protocols are held back by a gate.

    Refusals go to the wrapped factory's C{refusals} (a
    L{twisted_net.server.refusals.RefusalLog}) when it has one, so they are counted
    and exported with the server's own.

    @ivar timeout: seconds a connection has to get through the gate.
    @ivar clock: where the deadlines are scheduled.
    """

    protocol: Callable[..., GatedProtocol] = GatedProtocol
    noisy = False
    log = NamedLogger("twisted_net.gate")

    def __init__(
        self,
        wrappedFactory: IProtocolFactory,
        clock: IReactorTime | None = None,
        timeout: float = DEFAULT_GATE_TIMEOUT,
    ) -> None:
        super().__init__(wrappedFactory)
        if clock is None:
            clock = getattr(wrappedFactory, "clock", None)
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        assert clock is not None
        self.clock = clock
        idle = getattr(getattr(wrappedFactory, "config", None), "idle_timeout", 0)
        self.timeout = min(timeout, idle) if idle else timeout

    def refuse(self, reason: str, peer: str) -> None:
        """
        Count and log one refusal.
        """
        refusals = getattr(self.wrappedFactory, "refusals", None)
        if refusals is not None:
            refusals.refuse(reason, peer)
        else:
            self.log.warn("Refused {peer}: {reason}", event="refused", peer=peer, reason=reason)


@implementer(IStreamServerEndpoint)
class GatedEndpoint:
    """
    A server endpoint that puts a L{GatedFactory} (sub)class around every
    factory it listens with.
    """

    def __init__(
        self,
        wrapped: IStreamServerEndpoint,
        gate: type[GatedFactory],
        clock: IReactorTime | None = None,
    ) -> None:
        self.wrapped = wrapped
        self.gate = gate
        self.clock = clock

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        return self.wrapped.listen(self.gate(protocolFactory, self.clock))


@implementer(IHandshakeListener)
class HandshakeGate(GatedProtocol):
    """
    Between Twisted's TLS layer and the greeting protocol: the greeting
    protocol is connected when the handshake completes.  A handshake that
    fails (an untrusted certificate, plain text on the TLS port) is refused
    as C{tls-handshake}; one that does not finish in time as C{tls-timeout}.
    """

    timeout_reason = TLS_TIMEOUT

    def handshakeCompleted(self) -> None:
        self.open_gate()

    def lost_before_open(self, reason: Failure) -> None:
        if reason is not None and _is_tls_error(reason):
            self.factory.refuse(
                TLS_HANDSHAKE,
                format_address(self.transport.getPeer()),  # type: ignore[union-attr]
            )


def _is_tls_error(reason: Failure) -> bool:
    """
    Whether C{reason} is an OpenSSL error (a failed TLS handshake).

    pyOpenSSL is looked up rather than imported: a server without TLS
    endpoints never loads it (see L{twisted_net.netepoll.lean}), and no OpenSSL
    error can exist before C{OpenSSL.SSL} has been imported.
    """
    openssl = sys.modules.get("OpenSSL.SSL")
    return openssl is not None and reason.check(openssl.Error) is not None


class HandshakeGateFactory(GatedFactory):
    """
    The factory to listen with under C{ssl:} endpoints.
    """

    protocol = HandshakeGate
