"""
The UDP port of the C{netepoll} reactor: Twisted's C{udp.Port} with a leaner
read loop, and datagrams in batches for protocols that take them (see
docs/PERFORMANCE.md, section "The netepoll reactor", UDP).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from itertools import repeat
from operator import itemgetter
from typing import Any

from twisted.internet import udp
from twisted.python import log

__all__ = ["LeanDatagramPort"]

_first = itemgetter(0)


class LeanDatagramPort(udp.Port):
    """
    A UDP port whose read loop looks up what it needs once per wakeup
    instead of once per datagram; otherwise C{udp.Port}, errors included.

    A protocol may also define C{datagramsReceived(datagrams)}: it is then
    given the datagrams read in batches of at most C{batch_size}, as a list
    of C{(datagram, (host, port))}, instead of one C{datagramReceived} call
    each, so that it can do its own per-call work once per batch.  Such a
    protocol handles each datagram's errors itself: an exception escaping
    C{datagramsReceived} is logged, and the rest of that batch is lost.
    C{maxThroughput} is then checked after each batch, so one wakeup may
    read up to one batch more than it.

    @ivar batch_size: the most datagrams read before a batch is delivered
        (reading on while the first ones wait delays their answers).
    """

    batch_size = 64

    def doRead(self) -> None:
        """
        Read datagrams until the socket is empty or C{maxThroughput} bytes
        were read, giving each to the protocol, as C{udp.Port.doRead} does
        (in batches to a protocol with C{datagramsReceived}).
        """
        deliver_batch = getattr(self.protocol, "datagramsReceived", None)
        if deliver_batch is not None:
            self._read_batches(deliver_batch)
            return
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
                self._read_failed(error)
                return
            read += len(data)
            if drop_flow_and_scope:
                addr = addr[:2]
            try:
                deliver(data, addr)
            except BaseException:
                log.err()

    def _read_batches(self, deliver_batch: Callable[[list[tuple[bytes, Any]]], None]) -> None:
        receive = self.socket.recvfrom
        size = self.maxPacketSize
        batch_size = self.batch_size
        limit = self.maxThroughput
        drop_flow_and_scope = self.addressFamily == socket.AF_INET6
        read = 0
        while read < limit:
            batch: list[tuple[bytes, Any]] = []
            try:
                # Up to batch_size receives without a bytecode between them;
                # list.extend keeps what came before EAGAIN (a test checks it).
                batch.extend(map(receive, repeat(size, batch_size)))
            except OSError as error:
                if batch:
                    self._deliver(deliver_batch, batch, drop_flow_and_scope)
                self._read_failed(error)
                return
            # maxThroughput is checked per batch: at most one batch more.
            read += sum(map(len, map(_first, batch)))
            self._deliver(deliver_batch, batch, drop_flow_and_scope)

    @staticmethod
    def _deliver(
        deliver_batch: Callable[[list[tuple[bytes, Any]]], None],
        batch: list[tuple[bytes, Any]],
        drop_flow_and_scope: bool,
    ) -> None:
        if drop_flow_and_scope:
            batch = [(data, addr[:2]) for data, addr in batch]
        try:
            deliver_batch(batch)
        except BaseException:
            log.err()

    def _read_failed(self, error: OSError) -> None:
        """
        End a read loop on C{error} as C{udp.Port.doRead} does: quietly when
        the socket is empty (or the read was interrupted), with
        C{connectionRefused} on a connected port's ICMP refusal; any other
        error is raised.
        """
        number = error.args[0]
        if number in udp._sockErrReadIgnore:
            return
        if number in udp._sockErrReadRefuse:
            if self._connectedAddr:
                self.protocol.connectionRefused()
            return
        raise error
