"""
The one send path of the C{netepoll} reactor's TCP server transports: what
every L{WriteThroughServer} on the flush queue has written leaves here, once
an iteration (L{twisted_net.netepoll.interface}).  A function the reactor
calls for the whole queue, not a method per transport: a call more a
message costs more than the budget allows (docs/PERFORMANCE.md, section
"The netepoll reactor").
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable

from twisted.internet.main import CONNECTION_LOST
from twisted.python import log

from twisted_net.netepoll.transport import WriteThroughServer

__all__ = ["send_queued"]

_join = b"".join

_write_descriptor = os.write
"""How a transport's descriptor is written (a seam for tests)."""


def send_queued(
    transports: list[WriteThroughServer], lost: Callable[[WriteThroughServer, object, bool], None]
) -> None:
    """
    Send what every transport on the reactor's flush queue has written; the
    one send path, which the reactor calls once before it next waits.

    The common case, a plain transport (see L{WriteThroughServer}) with only
    this iteration's bytes queued and no paused producer, is one C{write(2)}
    here; so is a transport that is no longer plain but has only bytes
    queued and is not closing; a close requested with nothing unsent is the
    close; everything else (a close after bytes included) is Twisted's
    C{doWrite}.
    What the kernel does not take waits for writability.  Transports queued
    while this runs (by a C{connectionLost} run from here, say) are sent in
    the same pass; the queue is left empty.

    @param lost: called as C{lost(transport, why, False)} (the reactor's
        C{_disconnectSelectable}) for a transport whose connection is lost,
        C{why} being what C{doWrite} would return.
    """
    write = _write_descriptor
    # A list iterator sees what is appended while it runs.
    for transport in transports:
        transport._flush_queued = False
        # The common case's tests come first and it assigns no more than it
        # must: it runs for every reply (docs/PERFORMANCE.md, section
        # "Winning back the restructuring's cost").
        try:
            if (not transport._plain or transport.dataBuffer or transport.producerPaused) and (
                why := _send_otherwise(transport)
            ) is not _ONE_WRITE:
                pass  # done, or lost: why says
            else:
                chunks = transport._tempDataBuffer
                data = _join(chunks)  # the chunk itself when there is one
                chunks.clear()
                size = transport._tempDataLen
                transport._tempDataLen = 0
                try:
                    sent = write(transport.descriptor, data)
                except (BlockingIOError, InterruptedError):
                    sent = -1
                except OSError as error:
                    sent = -1 if error.errno == errno.ENOBUFS else -2
                if sent == size:
                    continue  # (a transport closing after its bytes is doWrite's)
                if sent == -2:
                    why = CONNECTION_LOST
                else:
                    # The rest waits for writability.
                    transport.dataBuffer = data
                    transport.offset = sent if sent > 0 else 0
                    transport.startWriting()
                    continue
        except BaseException:
            why = sys.exc_info()[1]
            log.err()
        if why:
            try:
                lost(transport, why, False)
            except KeyboardInterrupt:
                raise
            except BaseException:
                log.err()
    transports.clear()


_ONE_WRITE = object()
"""What L{_send_otherwise} gives for a transport that L{send_queued} is to
send with one C{write(2)} after all."""


def _send_otherwise(transport: WriteThroughServer) -> object:
    """
    What L{send_queued} does for a transport that is not the common case:
    nothing for a lost or aborted connection; Twisted's C{doWrite} (and an
    epoll writer for what that leaves unsent) when bytes wait for
    writability, a half-close is pending, a producer waits on the flush, or
    a close waits for bytes; else the one C{write(2)} (L{_ONE_WRITE}) when
    bytes are queued, or the close asked for with nothing unsent.

    @return: L{_ONE_WRITE}, or why the connection is lost, or C{None}.
    """
    if transport._plain:
        # Bytes wait for writability, or the producer is paused.
        general = True
    elif not transport.connected or transport._aborting:
        return None
    else:
        producer = transport.producer
        general = bool(
            transport.dataBuffer
            or transport._writeDisconnecting
            or (
                producer is not None
                and (transport.producerPaused or not transport.streamingProducer)
            )
            or (transport._tempDataLen and transport.disconnecting)
        )
    if general:
        why = transport.doWrite()
        if not why and transport.has_unsent_data():
            transport.startWriting()
        return why
    if transport._tempDataLen:
        return _ONE_WRITE
    if transport.disconnecting:
        return transport._postLoseConnection()
    return None
