"""
Listen-queue overflows made visible: the kernel drops a connecting client's
handshake when a listening socket's accept queue is full, and nothing of
ours sees that client.  L{ListenOverflowWatch} reads the kernel's count
(L{twisted_net.server.kernel.listen_overflows}) every 10 s and logs a
warning when it rose, so at most one line per 10 s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from twisted_net.logs import NamedLogger
from twisted_net.server.kernel import listen_overflows

__all__ = ["OVERFLOW_INTERVAL", "ListenOverflowWatch"]

OVERFLOW_INTERVAL = 10.0
"""Seconds between two readings of the kernel's listen-queue overflows."""


class ListenOverflowWatch(Service):
    """
    Log C{listen_overflows} (fields C{count}: overflows since the last
    reading, C{total}: the kernel's count) when the count rose.  The kernel
    counts for the whole network namespace, not per socket.

    @ivar read: the reading, C{None} where it is unknown.
    """

    log = NamedLogger("twisted_net.service")

    def __init__(
        self,
        clock: Any,
        read: Callable[[], int | None] = listen_overflows,
        interval: float = OVERFLOW_INTERVAL,
    ) -> None:
        self.clock = clock
        self.read = read
        self.interval = interval
        self.last: int | None = None
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self.last = self.read()
        if self.last is None:
            return  # not Linux, or /proc unreadable: nothing to watch
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()

    def check(self) -> None:
        """
        Read the count; log when it rose since the last reading.
        """
        total = self.read()
        if total is None:
            return
        last, self.last = self.last, total
        if last is None or total <= last:
            return
        self.log.warn(
            "Listen queues overflowed {count} times in the last {interval:g} s "
            "({total} in all): connecting clients were dropped; raise "
            "net.core.somaxconn or the endpoint's backlog=",
            event="listen_overflows",
            count=total - last,
            total=total,
            interval=self.interval,
        )
