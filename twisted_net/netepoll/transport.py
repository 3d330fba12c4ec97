"""
The TCP server transport of the C{netepoll} reactor and its listening port.

L{WriteThroughServer} is Twisted's C{tcp.Server} whose writes are sent by the
reactor at the end of the iteration instead of after a round through epoll
(upstream ticket 5303), with Twisted's own code for everything else:
buffering, producers, half-close, TLS.  How it meets the reactor is in
L{twisted_net.netepoll.interface}; the figures behind each shortcut are in
docs/PERFORMANCE.md, section "The netepoll reactor".
"""

from __future__ import annotations

import _socket
import socket
from collections.abc import Iterable
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv6Address
from twisted.internet.error import ConnectionAborted
from twisted.internet.main import CONNECTION_DONE
from twisted.python.failure import Failure

__all__ = ["WriteThroughPort", "WriteThroughServer"]

_close_socket = _socket.socket.close
_CLEAN_CLOSE = Failure(CONNECTION_DONE)


class WriteThroughServer(tcp.Server):
    """
    A server-side TCP transport whose writes are sent by the reactor at the
    end of the current iteration, without a round through epoll.

    Writes through a C{startTLS} layer, writes to a transport with bytes
    already waiting for writability and anything but C{bytes} take
    Twisted's unchanged path.  C{loseConnection} with nothing unsent closes
    at the end of the iteration, and C{connectionLost} closes the socket
    without a C{shutdown(2)} first.

    @ivar descriptor: the socket's file descriptor (while connected).
    @ivar _flush_queued: this transport is on the reactor's flush queue.
    @ivar _plain: nothing but plain writes has happened: no TLS, no
        C{loseConnection}, C{loseWriteConnection} or C{abortConnection}, no
        pull producer, still connected.  Once false, writes and flushes take
        Twisted's general paths for good.
    @ivar _nothing_written: nothing was written or read yet: the bytes a
        server sends first (a greeting, from C{connectionMade}) leave in the
        L{write} call; once the peer has spoken (the reactor clears this on
        the first read), writes wait for the end-of-iteration flush, so that a
        reply written in pieces (HTTP's headers, then body) leaves in one
        segment.
    @ivar _in_epoll_unknown: the socket is still in the epoll set for
        reading, but the reactor no longer knows it (L{_stop_reading}).
    """

    _flush_queued = False
    _shouldShutdown = False
    _in_epoll_unknown = False

    def __init__(
        self,
        sock: socket.socket,
        protocol: Any,
        client: tuple[Any, ...],
        server: Any,
        sessionno: int,
        reactor: Any,
    ) -> None:
        # tcp.Server.__init__ with Connection's and FileDescriptor's, minus
        # the two strings (see logstr and repstr below).
        if not reactor:
            from twisted.internet import reactor
        self.reactor = reactor
        self._tempDataBuffer: list[bytes] = []
        self._tempDataLen = 0
        self.socket = sock
        sock.setblocking(False)
        self.fileno = sock.fileno
        self.descriptor = sock.fileno()
        self.protocol = protocol
        if len(client) != 2:
            self._addressType = IPv6Address
        self.server = server
        self.client = client
        self.sessionno = sessionno
        self.hostname = client[0]
        # Class attributes of Twisted's that the per-message path reads, as
        # instance attributes (docs/PERFORMANCE.md: fewer attribute lookups).
        self.dataBuffer = b""
        self.offset = 0
        self.bufferSize = self.bufferSize
        self.TLS = False
        self.disconnecting = 0
        self.producerPaused = False
        self._aborting = False
        self._writeDisconnecting = False
        self._writeDisconnected = False
        self._flush_queued = False
        self._plain = True
        self._nothing_written = True
        reactor.watch_new_connection(self.descriptor, self)
        self.connected = 1

    # Made when first asked for; plain attributes, not __dict__ entries:
    # reading a transport's __dict__ slows every attribute lookup of it
    # (docs/PERFORMANCE.md, section "The netepoll reactor").
    _logstr: str | None = None
    _repstr: str | None = None

    @property
    def logstr(self) -> str:
        """
        The log prefix Twisted formats in C{Server.__init__}: the protocol's
        log prefix, the session number and the peer's host.
        """
        made = self._logstr
        if made is None:
            protocol = getattr(self, "protocol", None)
            prefix = "Uninitialized" if protocol is None else self._getLogPrefix(protocol)
            made = self._logstr = f"{prefix},{self.sessionno},{self.hostname}"
        return made

    @logstr.setter
    def logstr(self, value: str) -> None:
        self._logstr = value

    @property
    def repstr(self) -> str:
        """
        What C{repr} gives, as C{Server.__init__} formats it.
        """
        made = self._repstr
        if made is None:
            protocol = getattr(self, "protocol", None)
            name = type(protocol).__name__ if protocol is not None else "Connection"
            where = getattr(self.server, "_realPortNumber", None)
            made = self._repstr = f"<{name} #{self.sessionno} on {where}>"
        return made

    @repstr.setter
    def repstr(self, value: str) -> None:
        self._repstr = value

    def write(self, data: bytes) -> None:
        """
        Queue C{data} to be sent by the reactor at the end of this iteration
        (see the class docstring); what this fast path does not cover takes
        Twisted's own C{write}.

        A connection's first bytes (a greeting) are sent at once when
        nothing is queued: with nothing written before there is nothing to
        keep together, and this saves the flush-list round (three calls a
        connection).  What the kernel does not take at once, or a failing
        C{send}, is queued as any write; the end-of-iteration flush meets
        the error again and reports it as Twisted would.
        """
        if type(data) is not bytes or not self._plain or self.dataBuffer:
            # TLS, a closing, aborted or lost connection, or not bytes; or
            # bytes waiting for writability (this transport is an epoll
            # writer already).
            super().write(data)
            return
        if not data:
            return
        if self._nothing_written:
            self._nothing_written = False
            if not self._tempDataLen:
                try:
                    sent = self.socket.send(data)
                except OSError:
                    sent = 0
                if sent == len(data):
                    return
                data = data[sent:]
        self._tempDataBuffer.append(data)
        queued = self._tempDataLen + len(data)
        self._tempDataLen = queued
        if queued > self.bufferSize:
            self._maybePauseProducer()
        if not self._flush_queued:
            self._flush_queued = True
            self.reactor._unflushed.append(self)  # type: ignore[attr-defined]

    # What ends the plain state (see _plain in the class docstring).  Each
    # of these is how Twisted sets one of TLS, _aborting, disconnecting,
    # _writeDisconnecting (then _writeDisconnected), connected = 0, or
    # registers a pull producer.

    def startTLS(self, *args: Any, **kwargs: Any) -> None:
        self._plain = False
        super().startTLS(*args, **kwargs)

    def abortConnection(self) -> None:
        self._plain = False
        super().abortConnection()

    def loseWriteConnection(self) -> None:
        self._plain = False
        super().loseWriteConnection()

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        if self.TLS:
            super().writeSequence(iovec)
            return
        self.write(b"".join(iovec))

    def loseConnection(self, _connDone: Failure = _CLEAN_CLOSE) -> None:
        """
        Close once everything written is sent, as Twisted does, but let the
        reactor's end-of-iteration flush do it when no bytes are waiting for
        writability.
        """
        self._plain = False
        if (
            self.TLS
            or not self.connected
            or self.disconnecting
            or self._writeDisconnected
            or self.offset != len(self.dataBuffer)
        ):
            super().loseConnection()
            return
        self._stop_reading()
        self.disconnecting = 1
        if not self._flush_queued:
            self._flush_queued = True
            self.reactor._unflushed.append(self)  # type: ignore[attr-defined]

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Twisted's C{registerProducer} (C{FileDescriptor}'s, reached through
        the TLS mixin's) in one call when no TLS layer is started.
        """
        if not streaming:
            self._plain = False
        if self.TLS or self.producer is not None or self.disconnected:
            super().registerProducer(producer, streaming)
            return
        self.producer = producer
        self.streamingProducer = streaming
        if not streaming:
            producer.resumeProducing()

    def unregisterProducer(self) -> None:
        """
        Twisted's C{unregisterProducer}, in one call when no TLS layer is
        started.
        """
        if self.TLS:
            super().unregisterProducer()
            return
        self.producer = None
        if self.connected and self.disconnecting:
            self.startWriting()

    def _stop_reading(self) -> None:
        """
        C{stopReading} for a connection about to close: the reactor forgets
        the socket but leaves it in the epoll set, which the close at the end
        of this iteration leaves for free.  Should the connection not close
        then after all (L{startWriting}, L{startReading}), the C{epoll_ctl}
        is made first.
        """
        if self.reactor.forget_until_close(self.descriptor):  # type: ignore[attr-defined]
            self._in_epoll_unknown = True
        else:
            self.stopReading()

    def _rejoin_epoll(self) -> None:
        """Take the socket out of the epoll set L{_stop_reading} left it in."""
        if self._in_epoll_unknown:
            self._in_epoll_unknown = False
            self.reactor.unregister_forgotten(self.descriptor)  # type: ignore[attr-defined]

    def startReading(self) -> None:
        """
        Watch for readability (Twisted's, after leaving the epoll set if
        L{_stop_reading} left the socket there).
        """
        self._rejoin_epoll()
        super().startReading()

    def startWriting(self) -> None:
        """
        Watch for writability (Twisted's, after leaving the epoll set if
        L{_stop_reading} left the socket there).
        """
        self._rejoin_epoll()
        super().startWriting()

    def connectionLost(self, reason: Failure) -> None:
        """
        Twisted's C{Connection.connectionLost} and
        C{FileDescriptor.connectionLost} in one: stop the producer, forget
        the socket in the reactor, close it, tell the protocol.
        """
        try:
            sock = self.socket
        except AttributeError:
            # Called twice (see tcp.Connection.connectionLost).
            return
        self._plain = False
        self.disconnected = 1
        self.connected = 0
        if self.producer is not None:
            self.producer.stopProducing()
            self.producer = None
        if not self.reactor.forget_lost(self.descriptor, self._in_epoll_unknown):  # type: ignore[attr-defined]
            self.stopReading()
            self.stopWriting()
        self._in_epoll_unknown = False
        orderly = not issubclass(reason.type, ConnectionAborted)  # type: ignore[arg-type]
        if orderly and not self._shouldShutdown:
            try:
                if type(sock) is socket.socket:
                    # socket.close() without its Python-level calls.
                    sock._closed = True  # type: ignore[attr-defined]
                    _close_socket(sock)
                else:
                    sock.close()
            except OSError:
                pass
        else:
            self._closeSocket(orderly)
        protocol = self.protocol
        del self.protocol
        del self.socket
        del self.fileno
        protocol.connectionLost(reason)

    def has_unsent_data(self) -> bool:
        """
        Whether bytes written are still waiting for the kernel to take them.
        """
        return bool(self._tempDataLen or self.offset != len(self.dataBuffer))


class WriteThroughPort(tcp.Port):
    """
    A listening TCP port whose connections use L{WriteThroughServer}.
    """

    transport = WriteThroughServer
