"""
A fake of what a L{twisted_net.netepoll.transport.WriteThroughServer} asks of
its reactor (L{twisted_net.netepoll.interface.TransportReactor} and
C{IReactorFDSet}), for tests of the transport on a fake socket.
"""

from __future__ import annotations

from typing import Any

FAKE_SOCKETS: dict[int, Any] = {}
"""The fake sockets of the transports the fake reactor watches, by
descriptor: the transport's reads and writes of that descriptor go to them
(see conftest.py)."""


class FakeTransportReactor:
    """
    Records what a transport asks: readers and writers as sets, the flush
    queue as C{flush_list}; it never forgets a descriptor early (as a
    reactor that does not know the epoll shortcuts).
    """

    def __init__(self) -> None:
        self.flush_list: list[Any] = []
        # NetReactor's flush queue, which a transport appends itself to.
        self._unflushed = self.flush_list
        self.readers: set[Any] = set()
        self.writers: set[Any] = set()
        self.lost: list[tuple[Any, object]] = []

    def watch_new_connection(self, fd: int, transport: Any) -> None:
        FAKE_SOCKETS[fd] = transport.socket
        self.readers.add(transport)

    def forget_until_close(self, fd: int) -> bool:
        return False

    def unregister_forgotten(self, fd: int) -> None:
        raise AssertionError("nothing was forgotten")

    def forget_lost(self, fd: int, in_epoll_unknown: bool) -> bool:
        return False

    def _disconnectSelectable(self, selectable: Any, why: object, is_read: bool) -> None:
        self.lost.append((selectable, why))

    def addReader(self, selectable: Any) -> None:
        self.readers.add(selectable)

    def removeReader(self, selectable: Any) -> None:
        self.readers.discard(selectable)

    def addWriter(self, selectable: Any) -> None:
        self.writers.add(selectable)

    def removeWriter(self, selectable: Any) -> None:
        self.writers.discard(selectable)
