"""
A lean epoll reactor for small-message servers (C{twist --reactor netepoll}).

L{NetReactor} is Twisted's own C{EPollReactor} with write-through TCP server
transports (L{twisted_net.netepoll.transport}), direct event dispatch (no
C{log.callWithLogger} per event), a bounded event array per C{epoll_wait},
and UDP ports that read in batches (L{twisted_net.netepoll.udp}).  Timers,
threads, signals, TLS, clients and endpoints are inherited unchanged.  How
the reactor and its transport meet is in L{twisted_net.netepoll.interface};
the why and the figures of each shortcut are in docs/PERFORMANCE.md, section
"The netepoll reactor".
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from select import EPOLLIN, EPOLLOUT
from typing import Any

from twisted.internet.epollreactor import EPollReactor
from twisted.internet.error import ConnectionDone
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.internet.posixbase import _NO_FILEDESC
from twisted.python import log
from twisted.python.failure import Failure

from twisted_net.netepoll.accept import accepter
from twisted_net.netepoll.send import send_queued
from twisted_net.netepoll.transport import WriteThroughPort, WriteThroughServer
from twisted_net.netepoll.udp import LeanDatagramPort

__all__ = ["NetReactor", "install"]

_read_descriptor = os.read
"""How C{doPoll} reads a server transport's descriptor (a seam for tests)."""

_MAX_EVENTS = 64
"""Most events taken from one C{epoll_wait} (the rest come with the next).
Replies leave at the end of each batch, so a small batch lets the first
peers' answers go while the others are still being read: at 1,000 lockstep
connections, 64 gave 1.15-1.18x the messages/s of 1,024 and a shorter tail
(docs/PERFORMANCE.md, "Many connections: the epoll batch")."""

# What Twisted's _disconnectSelectable hands to connectionLost for the two
# common reasons (its own table is a default argument of that method).
_FAILURES = {
    type(CONNECTION_DONE): Failure(CONNECTION_DONE),
    type(CONNECTION_LOST): Failure(CONNECTION_LOST),
}


class NetReactor(EPollReactor):
    """
    C{EPollReactor} with write-through TCP server transports and direct
    event dispatch.

    Two hooks for code that builds its own listening ports for this reactor
    (an accept guard, say), each asked for with C{getattr} and a default,
    so that such code need not know this reactor:

    @cvar serverTransport: the class of the server-side TCP connections
        this reactor's C{listenTCP} makes
        (C{getattr(reactor, "serverTransport", tcp.Server)}).
    @cvar makeAccepter: C{makeAccepter(listeningSocket)} gives a function
        that accepts one connection as C{listeningSocket.accept} does, only
        cheaper (L{twisted_net.netepoll.accept.accepter}).
    """

    serverTransport = WriteThroughServer
    makeAccepter = staticmethod(accepter)
    _stop_signalled = False

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

    # The transport's side of twisted_net.netepoll.interface.TransportReactor.

    def watch_new_connection(self, fd: int, transport: WriteThroughServer) -> None:
        """
        C{addReader} for a socket epoll has never seen: one C{epoll_ctl}.
        """
        self._poller.register(fd, EPOLLIN)
        self._reads.add(fd)
        self._selectables[fd] = transport

    def forget_until_close(self, fd: int) -> bool:
        """
        Forget a socket only read from, leaving it in the epoll set: its
        close removes it there without an C{epoll_ctl}.
        """
        reads = self._reads
        if fd in reads and fd not in self._writes:
            reads.remove(fd)
            del self._selectables[fd]
            return True
        return False

    def unregister_forgotten(self, fd: int) -> None:
        """
        Remove a socket that L{forget_until_close} forgot from the epoll set.
        """
        self._poller.unregister(fd)

    def forget_lost(self, fd: int, in_epoll_unknown: bool) -> bool:
        """
        Forget a socket about to be closed, without the C{epoll_ctl} its
        close makes unnecessary.
        """
        if in_epoll_unknown or fd in self._reads or fd in self._writes:
            self._reads.discard(fd)
            self._writes.discard(fd)
            self._selectables.pop(fd, None)
            return True
        return False

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

    def _flush_writes(self) -> None:
        """
        Send what the transports on the flush queue have written
        (L{twisted_net.netepoll.send.send_queued}, the one send path).
        """
        send_queued(self._unflushed, self._disconnectSelectable)

    def doPoll(self, timeout: float | None) -> None:
        """
        Wait for events and dispatch them, as C{EPollReactor.doPoll} does
        (without C{log.callWithLogger}); flush the transports written to
        before waiting and after dispatching.

        The read of a server transport is here, inline, for every event
        that says it is readable: this loop is its one read path.  An event
        that says writable too is then handed on as a writability event.
        """
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
        server = WriteThroughServer
        read = _read_descriptor
        readable = EPOLLIN
        for fd, event in events:
            selectable = selectables(fd)
            if selectable is None:
                continue
            try:
                if type(selectable) is server and (event == readable or event & readable):
                    # tcp.Connection.doRead, inlined: one call less a
                    # message, and read(2) on the descriptor (the socket's
                    # recv parses its arguments the slow way and checks for
                    # a timeout).  A hang-up with input pending is a read,
                    # as in Twisted's _doReadOrWrite.
                    try:
                        data = read(fd, selectable.bufferSize)
                    except BlockingIOError:
                        why: object = None
                    except OSError:
                        why = CONNECTION_LOST
                    else:
                        if data:
                            # What is written from now on answers the peer:
                            # no longer "the server speaks first" (see
                            # WriteThroughServer.write).  Tested before it is
                            # cleared: a load costs less than a store.
                            if selectable._nothing_written:
                                selectable._nothing_written = False
                            try:
                                selectable.protocol.dataReceived(data)
                                if event == readable:
                                    continue
                            except BaseException:
                                log.err()
                                self._disconnectSelectable(selectable, sys.exc_info()[1], False)
                                continue
                            why = None
                        else:
                            why = CONNECTION_DONE
                    if why:
                        self._disconnectSelectable(selectable, why, True)
                    elif event & EPOLLOUT:
                        dispatch(selectable, fd, EPOLLOUT)
                elif event == readable:
                    # The other common event, dispatched as _doReadOrWrite
                    # would.
                    try:
                        why = _NO_FILEDESC if selectable.fileno() == -1 else selectable.doRead()
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
    Install L{NetReactor} as the global reactor, checked as
    L{twisted_net.netepoll.install} does (the workers of C{twist net
    --workers} install their supervisor's reactor through this module).
    """
    from twisted_net.netepoll import install as install_checked

    install_checked()
