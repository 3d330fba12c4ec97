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
    here; a close requested with nothing unsent is the close; everything
    else is Twisted's C{doWrite}.  What the kernel does not take waits for
    writability.  Transports queued while this runs (by a C{connectionLost}
    run from here, say) are sent in the same pass; the queue is left empty.

    @param lost: called as C{lost(transport, why, False)} (the reactor's
        C{_disconnectSelectable}) for a transport whose connection is lost,
        C{why} being what C{doWrite} would return.
    """
    write = _write_descriptor
    # A list iterator sees what is appended while it runs.
    for transport in transports:
        transport._flush_queued = False
        why: object = None
        try:
            if transport._plain:
                general = transport.dataBuffer or transport.producerPaused
            elif not transport.connected or transport._aborting:
                continue
            else:
                producer = transport.producer
                general = (
                    transport.dataBuffer
                    or transport._writeDisconnecting
                    or (
                        producer is not None
                        and (transport.producerPaused or not transport.streamingProducer)
                    )
                )
            if general:
                why = transport.doWrite()
                if not why and transport.has_unsent_data():
                    transport.startWriting()
            elif transport._plain or transport._tempDataLen:
                chunks = transport._tempDataBuffer
                data = _join(chunks)  # the chunk itself when there is one
                chunks.clear()
                transport._tempDataLen = 0
                try:
                    sent = write(transport.descriptor, data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as error:
                    sent = 0
                    if error.errno != errno.ENOBUFS:
                        why = CONNECTION_LOST
                if sent == len(data):
                    if transport._plain:  # the common case, done
                        continue
                    if transport.disconnecting:
                        why = transport._postLoseConnection()
                elif why is None:
                    transport.dataBuffer = data
                    transport.offset = sent
                    transport.startWriting()
            elif transport.disconnecting:
                why = transport._postLoseConnection()
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
