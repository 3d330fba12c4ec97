"""
Leaner versions of per-connection and per-datagram steps of Twisted's
transports, usable on any reactor (the epoll-only parts live in
L{twisted_net.reactor}).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import udp
from twisted.python import log

__all__ = ["LeanDatagramPort", "accepter"]


def accepter(listener: socket.socket) -> Callable[[], tuple[socket.socket, Any]]:
    """
    A function that accepts one connection from C{listener}, as its
    C{accept} method does, minus the work that method repeats on every call:
    it converts the listener's family and type to enums (about a microsecond
    a connection) to build the new socket object; here they are looked up
    once.  Errors are C{accept}'s own.

    @param listener: a listening, non-blocking socket (a blocking one gets
        its plain C{accept}, which also makes the new socket blocking).
    """
    raw = getattr(listener, "_accept", None)
    if raw is None or type(listener) is not socket.socket or listener.gettimeout() != 0.0:
        return listener.accept
    family, kind, proto = int(listener.family), int(listener.type), listener.proto
    make = socket.socket

    def accept() -> tuple[socket.socket, Any]:
        fd, address = raw()
        return make(family, kind, proto, fileno=fd), address

    return accept


class LeanDatagramPort(udp.Port):
    """
    A UDP port whose read loop looks up what it needs once per wakeup
    instead of once per datagram; otherwise C{udp.Port}, errors included.
    """

    def doRead(self) -> None:
        """
        Read datagrams until the socket is empty or C{maxThroughput} bytes
        were read, giving each to the protocol, as C{udp.Port.doRead} does.
        """
        receive = self.socket.recvfrom
        size = self.maxPacketSize
        deliver = self.protocol.datagramReceived
        limit = self.maxThroughput
        drop_flow_and_scope = self.addressFamily == socket.AF_INET6
        read = 0
        while read < limit:
            try:
                data, addr = receive(size)
            except OSError as error:
                number = error.args[0]
                if number in udp._sockErrReadIgnore:
                    return
                if number in udp._sockErrReadRefuse:
                    if self._connectedAddr:
                        self.protocol.connectionRefused()
                    return
                raise
            read += len(data)
            if drop_flow_and_scope:
                addr = addr[:2]
            try:
                deliver(data, addr)
            except BaseException:
                log.err()
