"""
A lean epoll reactor for small-message servers (C{twist --reactor netepoll}).

It is Twisted's own C{EPollReactor} with these costs removed from the
per-message path, each measured on this project's greeting server
(C{benchmarks/run.py} for time, C{benchmarks/instructions.py} for
instructions per message):

  - B{write-through}: Twisted's TCP C{transport.write} only buffers and asks
    epoll to report writability (an C{epoll_ctl} to add the writer, a trip
    through C{epoll_wait}, another C{epoll_ctl} to remove it; upstream
    ticket 5303).  Here the server transports written to during a reactor
    iteration are flushed by the reactor itself at the end of that
    iteration; only a connection whose bytes the kernel does not take all at
    once is registered with epoll, exactly as before.  Writes of one
    iteration still leave in one C{send} per connection, so a protocol that
    writes a header and a body does not meet Nagle's algorithm and the
    peer's delayed ACK (sending each C{write} at once costs such a protocol
    about 40 ms a reply).  Sending at the end of the iteration rather than
    right after each read also keeps the replies of one C{epoll_wait}
    together: sending at once (tried) lets the peers answer sooner, so fewer
    events arrive per wait and each message costs about 15% more.
    Buffering, producers and backpressure, half-close and C{loseConnection}
    are Twisted's own code paths.
  - B{direct dispatch}: C{EPollReactor.doPoll} wraps every event in
    C{log.callWithLogger}, which only sets the C{system} prefix of legacy
    C{twisted.python.log} messages; this reactor dispatches directly.  A
    read event of a server connection is handled inline: C{os.read} on its
    descriptor, then the protocol's C{dataReceived}; the end-of-iteration
    flush sends with C{os.write}.  (The socket object's C{recv} and C{send}
    parse their arguments the slow way and check for a timeout.)  Events
    logged with C{twisted.logger} are unaffected.
  - B{fewer attribute lookups}: under CPython 3.11 a class attribute read
    through an instance takes a generic lookup, an instance attribute one
    specialised instruction; the transport copies the few class attributes
    of Twisted's it reads per message into itself, and one C{_plain} flag
    stands for five conditions (see L{WriteThroughServer}).
  - B{lean connection ends}: C{loseConnection} with nothing unsent closes at
    the end of the iteration instead of through an epoll writer and an
    empty C{send}, and the socket is closed without a C{shutdown(2)} first.

UDP ports are L{twisted_net.netepoll.udp.LeanDatagramPort}s, which
read datagrams in batches for protocols that take them.  Everything else
(timers, threads, signals, TLS, clients, endpoints, socket adoption) is
inherited unchanged.
"""

from __future__ import annotations

import _socket
import errno
import os
import socket
import sys
from collections.abc import Iterable
from select import EPOLLIN
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv6Address
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST, installReactor
from twisted.internet.posixbase import _NO_FILEDESC
from twisted.python import log
from twisted.python.failure import Failure

from twisted_net.netepoll.udp import LeanDatagramPort

__all__ = ["NetReactor", "WriteThroughPort", "WriteThroughServer", "install"]

_close_socket = _socket.socket.close
_CLEAN_CLOSE = Failure(CONNECTION_DONE)

_MAX_EVENTS = 1024
"""Most events taken from one C{epoll_wait}.  Twisted asks for as many as
there are descriptors, so C{select.epoll.poll} allocates an event array that
large on every call (120 KB at 10,000 connections); events left over are
reported by the next call (epoll is level-triggered)."""
_LOST = Failure(CONNECTION_LOST)
# What Twisted's _disconnectSelectable hands to connectionLost for the two
# common reasons (its own table is a default argument of that method).
_FAILURES = {type(CONNECTION_DONE): _CLEAN_CLOSE, type(CONNECTION_LOST): _LOST}


class WriteThroughServer(tcp.Server):
    """
    A server-side TCP transport whose writes are sent by the reactor at the
    end of the current iteration, without a round through epoll.

    Only the C{startWriting} of C{twisted.internet.abstract.FileDescriptor.write}
    changes: a transport with nothing queued is put on its reactor's flush
    list instead of being registered as an epoll writer.  Writes through a
    C{startTLS} layer, writes to a transport with bytes already queued (it
    is registered as a writer) and anything but C{bytes} take Twisted's
    unchanged path.

    More costs of Twisted's transport are cut on the same paths:
    C{doRead} hands the bytes to the protocol without the intermediate
    C{_dataReceived} call; C{loseConnection} with nothing unsent closes at
    the end of the iteration instead of registering an epoll writer to
    learn that there is nothing to write (two C{epoll_ctl}, an empty
    C{send} and a poll round per connection); and the socket is closed
    without the C{shutdown(2)} Twisted calls first, which its own comment
    calls unnecessary because accepted sockets are close-on-exec (a peer
    sees the same FIN; unread input still gets a RST).  And C{logstr} and
    C{repr} are made when first asked for rather than formatted for every
    connection (together about a microsecond and 170 bytes a connection).

    The connection's ends skip the reactor's generic bookkeeping where it
    only repeats itself: a new connection is registered for reading with one
    C{epoll_ctl} and no C{addReader} round; C{loseConnection} with nothing
    unsent makes the reactor forget the socket without the C{epoll_ctl} that
    would remove it from the epoll set, because the close that follows at
    the end of the iteration removes it for free (see L{_stop_reading});
    and C{connectionLost} does Twisted's steps in one method.

    @ivar descriptor: the socket's file descriptor, which the reactor reads
        and writes with C{os.read} and C{os.write} (while connected).
    @ivar _flush_queued: this transport is on the reactor's flush list.
    @ivar _plain: nothing but plain writes has happened: no TLS, no
        C{loseConnection}, C{loseWriteConnection} or C{abortConnection}, no
        pull producer, still connected.  One flag read on every write
        instead of five; once false, writes and flushes take Twisted's
        general paths for good.
    @ivar _in_epoll_unknown: the socket is still in the epoll set for
        reading, but the reactor no longer knows it (L{_stop_reading}): its
        events are ignored, and closing the socket drops it from the set.
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
        # Twisted keeps these as class attributes.  Read through an instance,
        # CPython 3.11 finds a class attribute with a generic lookup (about
        # 150 instructions); an instance attribute takes one specialised
        # instruction, and the per-message path reads a dozen of them.
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
        if isinstance(reactor, NetReactor):
            # addReader for a socket epoll has never seen: one epoll_ctl.
            fd = self.descriptor
            reactor._poller.register(fd, EPOLLIN)
            reactor._reads.add(fd)
            reactor._selectables[fd] = self
        else:
            self.startReading()
        self.connected = 1

    @property
    def logstr(self) -> str:
        """
        The log prefix Twisted formats in C{Server.__init__}: the protocol's
        log prefix, the session number and the peer's host.
        """
        made: str | None = self.__dict__.get("_logstr")
        if made is None:
            protocol = self.__dict__.get("protocol")
            prefix = "Uninitialized" if protocol is None else self._getLogPrefix(protocol)
            made = self.__dict__["_logstr"] = f"{prefix},{self.sessionno},{self.hostname}"
        return made

    @logstr.setter
    def logstr(self, value: str) -> None:
        self.__dict__["_logstr"] = value

    @property
    def repstr(self) -> str:
        """
        What C{repr} gives, as C{Server.__init__} formats it.
        """
        made: str | None = self.__dict__.get("_repstr")
        if made is None:
            protocol = self.__dict__.get("protocol")
            name = type(protocol).__name__ if protocol is not None else "Connection"
            where = getattr(self.server, "_realPortNumber", None)
            made = self.__dict__["_repstr"] = f"<{name} #{self.sessionno} on {where}>"
        return made

    @repstr.setter
    def repstr(self, value: str) -> None:
        self.__dict__["_repstr"] = value

    def doRead(self) -> object:  # type: ignore[override]
        """
        Read what the peer sent and give it to the protocol, as
        C{tcp.Connection.doRead} does.
        """
        try:
            data = self.socket.recv(self.bufferSize)
        except OSError as error:
            if error.errno == errno.EAGAIN:
                return None
            return CONNECTION_LOST
        if not data:
            return CONNECTION_DONE
        self.protocol.dataReceived(data)
        return None

    def write(self, data: bytes) -> None:
        """
        Queue C{data} to be sent by the reactor at the end of this iteration
        (see the class docstring); what this fast path does not cover takes
        Twisted's own C{write}.
        """
        if type(data) is not bytes or not self._plain or self.dataBuffer:
            # TLS, a closing, aborted or lost connection, or not bytes; or
            # bytes waiting for writability (this transport is an epoll
            # writer already).
            super().write(data)
            return
        if not data:
            return
        self._tempDataBuffer.append(data)
        self._tempDataLen += len(data)
        if self._tempDataLen > self.bufferSize:
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
            self.reactor.flush_at_end_of_iteration(self)  # type: ignore[attr-defined]

    def send_first(self, data: bytes) -> None:
        """
        Send the first bytes of a connection (a greeting) at once instead of
        at the end of the iteration: with nothing written before there is
        nothing to keep together, and this saves the flush-list round
        (three calls a connection).  Anything but the plain case, and what
        the kernel does not take at once, goes through L{write}; so does a
        failing C{send}, whose error the end-of-iteration flush meets again
        and reports as Twisted would.
        """
        if type(data) is not bytes or not self._plain or self._tempDataLen or self.dataBuffer:
            self.write(data)
            return
        try:
            sent = self.socket.send(data)
        except OSError:
            sent = 0
        if sent < len(data):
            self.write(data[sent:])

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
        the socket, so its read events are ignored from now on, but it stays
        in the epoll set until the close at the end of this iteration
        removes it there without an C{epoll_ctl} (the kernel drops a socket
        from every epoll set when its last descriptor is closed; accepted
        sockets are close-on-exec and never duplicated here).  Should the
        connection not close then after all (L{startWriting} because the
        kernel did not take every byte, or L{startReading}), the
        C{epoll_ctl} is made first.
        """
        reactor = self.reactor
        if not isinstance(reactor, NetReactor):
            self.stopReading()
            return
        fd = self.descriptor
        reads = reactor._reads
        if fd in reads and fd not in reactor._writes:
            reads.remove(fd)
            del reactor._selectables[fd]
            self._in_epoll_unknown = True
        else:
            self.stopReading()

    def _forget_epoll(self) -> None:
        """
        Remove the socket from the epoll set that L{_stop_reading} left it
        in, before the reactor is asked to watch it again.
        """
        self._in_epoll_unknown = False
        self.reactor._poller.unregister(self.descriptor)  # type: ignore[attr-defined]

    def startReading(self) -> None:
        """
        Watch for readability (Twisted's, after L{_forget_epoll} if needed).
        """
        if self._in_epoll_unknown:
            self._forget_epoll()
        super().startReading()

    def startWriting(self) -> None:
        """
        Watch for writability (Twisted's, after L{_forget_epoll} if needed).
        """
        if self._in_epoll_unknown:
            self._forget_epoll()
        super().startWriting()

    def connectionLost(self, reason: Failure) -> None:
        """
        Twisted's C{Connection.connectionLost} and
        C{FileDescriptor.connectionLost} in one: stop the producer, forget
        the socket in the reactor, close it, tell the protocol.  A socket
        the reactor watches only with epoll leaves the epoll set with its
        close, so no C{epoll_ctl} is made for it.
        """
        try:
            sock = self.socket
        except AttributeError:
            # Called twice (see tcp.Connection.connectionLost).  Not
            # "socket" in self.__dict__: reading __dict__ costs Python 3.11
            # a conversion of the instance's attribute storage.
            return
        reactor = self.reactor
        self._plain = False
        self.disconnected = 1
        self.connected = 0
        if self.producer is not None:
            self.producer.stopProducing()
            self.producer = None
        fd = self.descriptor
        if isinstance(reactor, NetReactor) and (
            self._in_epoll_unknown or fd in reactor._reads or fd in reactor._writes
        ):
            # The close below removes the socket from the epoll set.
            self._in_epoll_unknown = False
            reactor._reads.discard(fd)
            reactor._writes.discard(fd)
            reactor._selectables.pop(fd, None)
        else:
            self.stopReading()
            self.stopWriting()
        orderly = not issubclass(reason.type, ConnectionAborted)  # type: ignore[arg-type]
        if orderly and not self._shouldShutdown:
            try:
                if type(sock) is socket.socket:
                    # socket.close() without its two Python-level calls: it
                    # waits only for makefile() objects, which a
                    # transport's socket never has.
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

    def send_queued(self) -> object:
        """
        Send what was written this iteration; called by the reactor.

        The common case, a connection with only this iteration's bytes queued
        and no paused producer waiting on them, is one C{send} (then, after
        C{loseConnection}, the close); everything else is Twisted's
        C{doWrite}.

        @return: what C{doWrite} returns: C{None}, or why the connection is
            lost (C{CONNECTION_DONE} once a requested close can happen).
        """
        if (
            self.dataBuffer
            or self._writeDisconnecting
            or (self.producer is not None and (self.producerPaused or not self.streamingProducer))
        ):
            return self.doWrite()
        if not self._tempDataLen:
            return self._postLoseConnection() if self.disconnecting else None
        chunks = self._tempDataBuffer
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._tempDataLen = 0
        try:
            sent = self.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            if error.errno == errno.ENOBUFS:
                sent = 0
            else:
                return CONNECTION_LOST
        if sent < len(data):
            self.dataBuffer = data
            self.offset = sent
            return None
        if self.disconnecting:
            return self._postLoseConnection()
        return None

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


class NetReactor(EPollReactor):
    """
    C{EPollReactor} with write-through TCP server transports and direct
    event dispatch.
    """

    _stop_signalled = False

    _read_descriptor = staticmethod(os.read)
    """How a server transport's descriptor is read (a seam for tests)."""
    _write_descriptor = staticmethod(os.write)
    """How a server transport's descriptor is written (a seam for tests)."""

    def __init__(self) -> None:
        self._unflushed: list[WriteThroughServer] = []
        super().__init__()

    def sigInt(self, number: int, frame: Any = None) -> None:
        """
        Stop on the first Ctrl-C; a second one while the server drains is
        ignored (Twisted's own handler would call C{stop} twice and log a
        critical C{ReactorNotRunning}).
        """
        if not self._stop_signalled:
            self._stop_signalled = True
            super().sigInt(number, frame)

    def sigTerm(self, number: int, frame: Any = None) -> None:
        """
        Stop on the first SIGTERM; later ones are ignored, as in L{sigInt}.
        """
        if not self._stop_signalled:
            self._stop_signalled = True
            super().sigTerm(number, frame)

    def listenTCP(
        self, port: int, factory: Any, backlog: int = 50, interface: str = ""
    ) -> WriteThroughPort:
        listening = WriteThroughPort(port, factory, backlog, interface, self)
        listening.startListening()
        return listening

    def adoptStreamPort(
        self, fileDescriptor: int, addressFamily: Any, factory: Any
    ) -> WriteThroughPort:
        if addressFamily not in (socket.AF_INET, socket.AF_INET6):
            return super().adoptStreamPort(fileDescriptor, addressFamily, factory)  # type: ignore[no-any-return]
        listening: WriteThroughPort = WriteThroughPort._fromListeningDescriptor(
            self, fileDescriptor, addressFamily, factory
        )
        listening.startListening()
        return listening

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> LeanDatagramPort:
        listening = LeanDatagramPort(port, protocol, interface, maxPacketSize, self)
        listening.startListening()
        return listening

    def adoptDatagramPort(
        self, fileDescriptor: int, addressFamily: Any, protocol: Any, maxPacketSize: int = 8192
    ) -> LeanDatagramPort:
        if addressFamily not in (socket.AF_INET, socket.AF_INET6):
            return super().adoptDatagramPort(  # type: ignore[no-any-return]
                fileDescriptor, addressFamily, protocol, maxPacketSize
            )
        listening: LeanDatagramPort = LeanDatagramPort._fromListeningDescriptor(
            self, fileDescriptor, addressFamily, protocol, maxPacketSize=maxPacketSize
        )
        listening.startListening()
        return listening

    def _disconnectSelectable(
        self, selectable: Any, why: Any, isRead: bool, faildict: Any = None
    ) -> None:
        """
        Twisted's C{_disconnectSelectable}, minus its C{removeReader} and
        C{removeWriter} calls for a L{WriteThroughServer} that is simply
        lost: its C{connectionLost} forgets the socket itself.  A read that
        ended cleanly (a possible half-close) and every other selectable
        take Twisted's path.
        """
        if type(selectable) is WriteThroughServer and not (isRead and type(why) is ConnectionDone):
            failure = _FAILURES.get(type(why))
            selectable.connectionLost(failure if failure is not None else Failure(why))
            return
        if faildict is None:
            super()._disconnectSelectable(selectable, why, isRead)
        else:
            super()._disconnectSelectable(selectable, why, isRead, faildict)

    def flush_at_end_of_iteration(self, transport: WriteThroughServer) -> None:
        """
        Send C{transport}'s queued bytes before the reactor next waits.
        """
        self._unflushed.append(transport)

    def _flush_writes(self) -> None:
        """
        Send what every transport on the flush list has queued; register only
        those the kernel did not take everything from as epoll writers.

        The common case, a connection with only this iteration's bytes
        queued, nothing being closed and no producer waiting to be resumed,
        is one C{send} here; every other case goes through the transport's
        L{WriteThroughServer.send_queued}, that is Twisted's C{doWrite}.
        Transports written to while the list is being flushed (by a
        C{connectionLost} run from here, say) are flushed in the same pass.
        """
        transports = self._unflushed
        write = self._write_descriptor
        join = b"".join
        # A list iterator sees what is appended while it runs.
        for transport in transports:
            transport._flush_queued = False
            if transport._plain and not (transport.dataBuffer or transport.producerPaused):
                chunks = transport._tempDataBuffer
                data = join(chunks)  # the chunk itself when there is one
                try:
                    sent = write(transport.descriptor, data)
                except OSError:
                    pass  # EAGAIN, ENOBUFS or a lost connection: see send_queued
                else:
                    chunks.clear()
                    size = transport._tempDataLen
                    transport._tempDataLen = 0
                    if sent != size:
                        transport.dataBuffer = data
                        transport.offset = sent
                        transport.startWriting()
                    continue
            if not transport.connected or transport._aborting:
                continue
            try:
                why = transport.send_queued()
            except BaseException:
                why = sys.exc_info()[1]
                log.err()
            try:
                if why:
                    self._disconnectSelectable(transport, why, False)
                elif transport._tempDataLen or transport.offset != len(transport.dataBuffer):
                    transport.startWriting()
            except KeyboardInterrupt:
                raise
            except BaseException:
                log.err()
        transports.clear()

    def doPoll(self, timeout: float | None) -> None:
        if self._unflushed:
            # Written by timed or thread calls since the last poll; whatever
            # flushing them runs may schedule more, so do not block.
            self._flush_writes()
            timeout = 0
        if timeout is None:
            timeout = -1
        try:
            events = self._poller.poll(timeout, min(len(self._selectables), _MAX_EVENTS))
        except OSError as error:
            if error.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables.get
        dispatch = self._doReadOrWrite
        readable = EPOLLIN
        server = WriteThroughServer
        read = self._read_descriptor
        for fd, event in events:
            selectable = selectables(fd)
            if selectable is None:
                continue
            try:
                if event == readable:
                    # The common event, dispatched as _doReadOrWrite would.
                    try:
                        if type(selectable) is server:
                            # WriteThroughServer.doRead, inlined: one call
                            # less for every message of every connection,
                            # and read(2) on the descriptor (the socket's
                            # recv parses its arguments the slow way and
                            # checks for a timeout: ~450 instructions).
                            try:
                                data = read(fd, selectable.bufferSize)
                            except BlockingIOError:
                                continue
                            except OSError:
                                why: object = CONNECTION_LOST
                            else:
                                if data:
                                    selectable.protocol.dataReceived(data)
                                    continue
                                why = CONNECTION_DONE
                        elif selectable.fileno() == -1:
                            why = _NO_FILEDESC
                        else:
                            why = selectable.doRead()
                        in_read = True
                    except BaseException:
                        why = sys.exc_info()[1]
                        in_read = False
                        log.err()
                    if why:
                        self._disconnectSelectable(selectable, why, in_read)
                else:
                    dispatch(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                # What log.callWithLogger does for EPollReactor: an error in
                # connectionLost must not cost the other events.
                log.err()
        if self._unflushed:
            self._flush_writes()

    doIteration = doPoll


def install() -> None:
    """
    Install L{NetReactor} as the global reactor.
    """
    installReactor(NetReactor())
