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
    queued (then the close, if one was asked for); a close requested with
    nothing unsent is the close; everything else is Twisted's C{doWrite}.
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
            if (
                transport._plain and not (transport.dataBuffer or transport.producerPaused)
            ) or _only_bytes_queued(transport):
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
                    # (A plain transport is never closing; _plain is a bool,
                    # the cheaper test.)
                    if transport._plain or not transport.disconnecting:
                        continue
                    why: object = transport._postLoseConnection()
                elif sent == -2:
                    why = CONNECTION_LOST
                else:
                    # The rest waits for writability.
                    transport.dataBuffer = data
                    transport.offset = sent if sent > 0 else 0
                    transport.startWriting()
                    continue
            else:
                why = _send_otherwise(transport)
        except BaseException:
            why = sys.exc_info()[1]
            log.err()
        if why:
            _report(lost, transport, why)
    transports.clear()


def _only_bytes_queued(transport: WriteThroughServer) -> bool:
    """
    Whether a transport that is no longer plain still has nothing but this
    iteration's bytes to send (then perhaps the close): connected, not
    aborted, and nothing that Twisted's C{doWrite} must see to.
    """
    return bool(
        not transport._plain
        and transport.connected
        and not transport._aborting
        and transport._tempDataLen
        and not _needs_do_write(transport)
    )


def _needs_do_write(transport: WriteThroughServer) -> bool:
    """
    Whether a transport that is no longer plain is Twisted's C{doWrite}'s
    to flush: bytes wait for writability, a half-close is pending, or a
    producer waits on the flush (paused, or a pull producer).
    """
    producer = transport.producer
    return bool(
        transport.dataBuffer
        or transport._writeDisconnecting
        or (producer is not None and (transport.producerPaused or not transport.streamingProducer))
    )


def _send_otherwise(transport: WriteThroughServer) -> object:
    """
    What L{send_queued} does for a transport it does not send with one
    C{write(2)}: nothing for a lost or aborted connection, Twisted's
    C{doWrite} (and an epoll writer for what that leaves unsent) where
    L{_needs_do_write} says so, or the close asked for with nothing unsent.

    @return: why the connection is lost, or C{None}.
    """
    if transport._plain:
        # Bytes wait for writability, or the producer is paused.
        general = True
    elif not transport.connected or transport._aborting:
        return None
    else:
        general = _needs_do_write(transport)
    if general:
        why = transport.doWrite()
        if not why and transport.has_unsent_data():
            transport.startWriting()
        return why
    if transport.disconnecting:
        return transport._postLoseConnection()
    return None


def _report(
    lost: Callable[[WriteThroughServer, object, bool], None],
    transport: WriteThroughServer,
    why: object,
) -> None:
    """Tell the reactor that C{transport}'s connection is lost, C{why}."""
    try:
        lost(transport, why, False)
    except KeyboardInterrupt:
        raise
    except BaseException:
        log.err()
