"""
Listening TCP ports that survive running out of file descriptors.

When C{accept(2)} fails with C{EMFILE} or C{ENFILE}, Twisted's own
C{twisted.internet.tcp.Port} either closes the waiting connections through
one process-wide reserve descriptor, logging one line per connection, or (for
C{ENFILE}, C{ENOBUFS}, C{ENOMEM}, or when the reserve is gone) logs and
returns while the listening socket stays readable, so the reactor calls it
again at once: 100% CPU and a log line per loop.

L{GuardedPort} instead tells each connection it cannot serve C{server busy}
through its own reserve descriptor, counts it as a refusal (logged at a
bounded rate), and stops reading the listening socket for a short back-off,
so that a process at its descriptor limit stays cheap and takes new
connections again as soon as descriptors free up.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory

from twisted_net.address import format_host_port
from twisted_net.logs import NamedLogger
from twisted_net.server.refusals import ACCEPT_EMFILE, ACCEPT_ENOMEM, ACCEPT_ERROR, RefusalLog

__all__ = ["ACCEPT_BACKOFF", "GuardedListeningReactor", "GuardedPort"]

ACCEPT_BACKOFF = 0.1
"""Seconds the listening socket is left alone after an C{accept} failure."""

_ADDRESS_UNUSED = Factory.buildProtocol

_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})
_OUT_OF_MEMORY = frozenset({errno.ENOBUFS, errno.ENOMEM})
_NOTHING_WAITING = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})
_TRY_NEXT = frozenset({errno.EPERM, errno.ECONNABORTED, errno.EINTR, errno.EPROTO})


def _reserve_descriptor() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _printable(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return format_host_port(str(address[0]), int(address[1]))
    return "unknown"


def _peer(address: Any) -> IPv4Address | IPv6Address:
    """
    The address object C{tcp.Port} gives C{buildProtocol}, from C{accept}'s
    address (an IPv6 one has four parts).
    """
    if len(address) == 4:
        return IPv6Address("TCP", *address)
    return IPv4Address("TCP", *address)


def _server_transport(reactor: Any) -> type[tcp.Server]:
    """
    The connection class the reactor's own C{listenTCP} would use: the one it
    offers as C{serverTransport} (the C{netepoll} reactor does), else
    Twisted's C{tcp.Server}.
    """
    transport: type[tcp.Server] = getattr(reactor, "serverTransport", tcp.Server)
    return transport


def _accepter(reactor: Any, listener: socket.socket) -> Callable[[], tuple[socket.socket, Any]]:
    """
    A function accepting one connection from C{listener}: the one the reactor
    makes with its C{makeAccepter} (the C{netepoll} reactor's is cheaper per
    connection), else the socket's own C{accept}.
    """
    make = getattr(reactor, "makeAccepter", None)
    if make is None:
        return listener.accept
    accept: Callable[[], tuple[socket.socket, Any]] = make(listener)
    return accept


class GuardedPort(tcp.Port):
    """
    A C{tcp.Port} whose accept loop turns descriptor and memory exhaustion
    into counted C{server busy} refusals and a short pause, never a busy
    loop.

    @ivar refusals: where refusals are counted and logged.
    @ivar busy_line: sent to a connection refused for lack of descriptors,
        or C{None} to close it without a word (TLS ports: plain text would
        be noise to a TLS client).
    @ivar backoff: seconds to leave the listening socket unread after a
        failure.
    """

    log = NamedLogger("twisted_net.accepting")

    def __init__(
        self,
        port: int,
        factory: Any,
        backlog: int,
        interface: str,
        reactor: Any,
        *,
        refusals: RefusalLog,
        busy_line: bytes | None,
        backoff: float = ACCEPT_BACKOFF,
        serve_when_exhausted: bool = False,
    ) -> None:
        super().__init__(port, factory, backlog, interface, reactor)
        self.refusals = refusals
        self.busy_line = busy_line
        self.backoff = backoff
        self.serve_when_exhausted = serve_when_exhausted
        self._reserve: int | None = None
        self._resume_call: IDelayedCall | None = None
        self._accept_one: Callable[[], tuple[socket.socket, Any]] | None = None
        self._accept_source: socket.socket | None = None

    def startListening(self) -> None:
        super().startListening()
        if self._reserve is None:
            self._reserve = _reserve_descriptor()
        self._accept_one = _accepter(self.reactor, self.socket)
        self._accept_source = self.socket

    def doRead(self) -> None:
        """
        Accept every waiting connection (up to C{numberAccepts}); on
        exhaustion refuse and back off instead of returning to a socket that
        stays readable.
        """
        if self._reserve is None and self.serve_when_exhausted:
            # Taken by the last connection served on it: back as soon as a
            # descriptor is free, before accept(2) takes that one too.
            self._reserve = _reserve_descriptor()
        accepted = 0
        accept = self._accept_one
        if accept is None or self._accept_source is not self.socket:
            accept = self.socket.accept
        for _ in range(self.numberAccepts):
            try:
                client, address = accept()
            except OSError as error:
                if error.errno in _NOTHING_WAITING:
                    break
                if error.errno in _TRY_NEXT:
                    continue
                if error.errno in _OUT_OF_DESCRIPTORS:
                    self._refuse_waiting(ACCEPT_EMFILE)
                elif error.errno in _OUT_OF_MEMORY:
                    self._refuse_waiting(ACCEPT_ENOMEM)
                else:
                    self.refusals.refuse(ACCEPT_ERROR, "unknown")
                    self._back_off()
                return
            accepted += 1
            self._serve(client, address)
        if accepted == self.numberAccepts:
            self.numberAccepts += 20
        else:
            self.numberAccepts = max(1, accepted)

    def _serve(self, client: socket.socket, address: Any) -> None:
        """
        Hand one accepted socket to a protocol, as C{tcp.Port.doRead} does.
        """
        try:
            if len(address) == 4:
                host = socket.getnameinfo(address, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
                address = (host[0], *address[1:])
            port: Any = self
            factory = port.factory
            # Twisted's own Factory.buildProtocol never looks at the address:
            # do not build an address object per connection for it.
            protocol: Any = factory.buildProtocol(
                None if type(factory).buildProtocol is _ADDRESS_UNUSED else _peer(address)
            )
            if protocol is None:
                client.close()
                return
            session = self.sessionno
            self.sessionno = session + 1
            protocol.makeConnection(
                port.transport(client, protocol, address, self, session, self.reactor)
            )
        except Exception:
            self.log.failure("Could not set up a connection from {peer}", peer=address)

    def _refuse_waiting(self, reason: str) -> None:
        """
        Out of descriptors (or memory): L{_serve_on_reserve} where this port
        serves when exhausted, else L{_turn_away_waiting}.
        """
        if self.serve_when_exhausted and self._serve_on_reserve():
            return
        self._turn_away_waiting(reason)

    def _serve_on_reserve(self) -> bool:
        """
        Give the reserve descriptor's place to one waiting connection and
        serve it, then back off: the port for operators (C{/metrics}) keeps
        answering when every other descriptor is taken, which is when it is
        needed most.  The reserve comes back once a descriptor is free.

        @return: whether a connection was served.
        """
        if self._reserve is None:
            return False
        os.close(self._reserve)
        self._reserve = None
        try:
            client, address = self.socket.accept()
        except OSError:
            self._reserve = _reserve_descriptor()
            return False
        self._serve(client, address)
        self._back_off()
        return True

    def _turn_away_waiting(self, reason: str) -> None:
        """
        Out of descriptors (or memory): use the reserve descriptor to tell
        every waiting peer C{busy_line} and close it, then back off.
        """
        refused = 0
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
            try:
                for _ in range(max(self.numberAccepts, 64)):
                    try:
                        client, address = self.socket.accept()
                    except OSError:
                        break
                    refused += 1
                    self._turn_away(client, address, reason)
            finally:
                self._reserve = _reserve_descriptor()
        if not refused:
            self.refusals.refuse(reason, "unknown")
        self._back_off()

    def _turn_away(self, client: socket.socket, address: Any, reason: str) -> None:
        try:
            if self.busy_line is not None:
                client.setblocking(False)
                client.send(self.busy_line)
        except OSError:
            pass
        finally:
            client.close()
        self.refusals.refuse(reason, _printable(address))

    def _back_off(self) -> None:
        if self._resume_call is not None or self.disconnecting:
            return
        port: Any = self
        port.stopReading()
        self._resume_call = port.reactor.callLater(self.backoff, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._resume_call = None
        if self._reserve is None:
            self._reserve = _reserve_descriptor()
        port: Any = self
        if port.connected and not port.disconnecting:
            port.startReading()

    def connectionLost(self, reason: Any) -> None:
        call: Any = self._resume_call
        self._resume_call = None
        if call is not None and call.active():
            call.cancel()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
        tcp.Port.connectionLost(self, reason)


class GuardedListeningReactor:
    """
    A view of a reactor for C{twisted.internet.endpoints.serverFromString}
    whose C{listenTCP} and C{listenSSL} make L{GuardedPort}s; everything
    else (UNIX sockets, adopted systemd sockets, timers) is the reactor's
    own.

    @param busy_line: what a connection turned away for lack of descriptors
        is told (C{None}: nothing).
    @param serve_when_exhausted: serve one waiting connection through the
        reserve descriptor instead of turning it away (the metrics port).
    """

    def __init__(
        self,
        reactor: Any,
        refusals: RefusalLog,
        busy_line: bytes | None,
        inherited: socket.socket | None = None,
        *,
        serve_when_exhausted: bool = False,
    ) -> None:
        self._reactor = reactor
        self._refusals = refusals
        self._busy_line = busy_line
        self._inherited = inherited
        self._serve_when_exhausted = serve_when_exhausted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def _listen(
        self, port: int, factory: Any, backlog: int, interface: str, busy_line: bytes | None
    ) -> GuardedPort:
        listening = GuardedPort(
            port,
            factory,
            backlog,
            interface,
            self._reactor,
            refusals=self._refusals,
            busy_line=busy_line,
            serve_when_exhausted=self._serve_when_exhausted,
        )
        listening.transport = _server_transport(self._reactor)
        if self._inherited is not None:
            # Bound and listening already (a worker of twist net --workers):
            # tcp.Port serves it instead of binding, and never shuts it down.
            # Private, but Twisted's own way in (adoptStreamPort sets it);
            # adoptStreamPort itself would make the reactor's port, without
            # this guard.
            listening._preexistingSocket, self._inherited = self._inherited, None
        listening.startListening()
        return listening

    def listenTCP(
        self, port: int, factory: Any, backlog: int = 50, interface: str = ""
    ) -> GuardedPort:
        return self._listen(port, factory, backlog, interface, self._busy_line)

    def listenSSL(
        self, port: int, factory: Any, contextFactory: Any, backlog: int = 50, interface: str = ""
    ) -> GuardedPort:
        from twisted.protocols.tls import TLSMemoryBIOFactory

        wrapped = TLSMemoryBIOFactory(contextFactory, False, factory)
        listening = self._listen(port, wrapped, backlog, interface, None)
        # What Twisted's own ssl.Port sets: the "(TLS Port N Closed)" line.
        listening._type = "TLS"
        return listening
