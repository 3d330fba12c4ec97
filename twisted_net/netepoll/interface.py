"""
How the C{netepoll} reactor and its TCP server transport meet, and nowhere
else.

The one read path of a L{WriteThroughServer} is the reactor's own: its
C{doPoll} reads the descriptor (C{read(2)}) and hands the bytes to the
transport's protocol for every event that says readable, inline, since a
call more a message costs more than the budget allows (docs/PERFORMANCE.md,
section "The netepoll reactor").  The one send path is the transport
module's L{twisted_net.netepoll.send.send_queued}, which the reactor
calls once before it next waits, for the whole flush queue; a lost
connection goes to the reactor's C{_disconnectSelectable}.

A transport asks of its reactor what L{TransportReactor} lists, besides
Twisted's own C{IReactorFDSet}: it queues itself for the flush by appending
itself to the reactor's C{_unflushed} list, once (its C{_flush_queued} flag,
which L{twisted_net.netepoll.send.send_queued} clears), and it asks the reactor to
register and to forget its descriptor.  The transport never touches the
reactor's epoll object or its descriptor tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from twisted_net.netepoll.transport import WriteThroughServer

__all__ = ["TransportReactor"]


class TransportReactor(Protocol):
    """
    What a L{WriteThroughServer} asks of its reactor, besides Twisted's
    C{IReactorFDSet}.  L{twisted_net.netepoll.reactor.NetReactor} is the
    one implementation.
    """

    _unflushed: list[WriteThroughServer]
    """The end-of-iteration flush queue: a transport appends itself, once
    (while its C{_flush_queued} is set), and the reactor hands the queue to
    L{twisted_net.netepoll.send.send_queued} before it next waits."""

    def watch_new_connection(self, fd: int, transport: WriteThroughServer) -> None:
        """
        Watch C{fd}, a socket the reactor has never seen, for reading.
        """

    def forget_until_close(self, fd: int) -> bool:
        """
        Stop dispatching C{fd}'s events, leaving it in the epoll set for the
        coming close to remove; C{False} if the reactor could not (it watches
        C{fd} for writing too) and nothing changed.
        """

    def unregister_forgotten(self, fd: int) -> None:
        """
        Remove from the epoll set a C{fd} that L{forget_until_close} forgot.
        """

    def forget_lost(self, fd: int, in_epoll_unknown: bool) -> bool:
        """
        Forget C{fd}, whose socket is about to be closed (the close removes it
        from the epoll set); C{False} if the reactor did not know it.
        """
