"""
A lean epoll reactor for small-message servers (C{twist --reactor netepoll}).

It is Twisted's own L{EPollReactor} with two costs removed from the
per-message path, both measured on this project's greeting server:

  - B{write-through}: Twisted's TCP C{transport.write} only buffers, and the
    bytes leave on the next reactor iteration after an extra C{epoll_ctl}
    to watch for writability (upstream ticket 5303).  Here a write to a
    connection whose buffer is empty is sent at once; only what the kernel
    does not take is buffered, exactly as before, so backpressure and
    producers behave as with Twisted's transports.
  - B{no per-event log context}: C{EPollReactor.doPoll} wraps every event in
    C{log.callWithLogger}, which only sets the C{system} prefix of legacy
    C{twisted.python.log} messages; this reactor dispatches directly.
    Events logged with C{twisted.logger} are unaffected.

Everything else (timers, threads, signals, UDP, TLS, endpoints, socket
adoption) is inherited unchanged.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.main import installReactor

__all__ = ["NetReactor", "WriteThroughServer", "WriteThroughPort", "install"]


class WriteThroughServer(tcp.Server):
    """
    A server-side TCP transport that sends at once when nothing is queued.
    """

    def write(self, data: bytes) -> None:
        if (
            data
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnecting
            and not self._tempDataLen
            and self.offset == len(self.dataBuffer)
            and type(data) is bytes
        ):
            try:
                sent = self.socket.send(data)
            except OSError:
                # Would block, or the connection broke: either way the
                # ordinary write path retries, and reports any error, from
                # doWrite.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        super().write(data)

    def writeSequence(self, iovec: Any) -> None:
        self.write(b"".join(iovec))


class WriteThroughPort(tcp.Port):
    """
    A listening TCP port whose connections use L{WriteThroughServer}.
    """

    transport = WriteThroughServer


class NetReactor(EPollReactor):
    """
    L{EPollReactor} with write-through TCP server transports and direct
    event dispatch.
    """

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

    def doPoll(self, timeout: float | None) -> None:
        if timeout is None:
            timeout = -1
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as error:
            if error.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        dispatch = self._doReadOrWrite
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is not None:
                dispatch(selectable, fd, event)

    doIteration = doPoll


def install() -> None:
    """
    Install L{NetReactor} as the global reactor.
    """
    installReactor(NetReactor())
