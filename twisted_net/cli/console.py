"""
Standard input and output for the C{twisted-net} command: bytes out, lines
in, without tracebacks when the other end goes away.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_net.client.tcp import GreetingClientProtocol
from twisted_net.hello import EXIT, split_line_ending

__all__ = ["StandardInputLines", "StandardOutput"]


class StandardOutput:
    """
    Standard output for bytes, written at once; when the reader goes away
    (C{twisted-net ... | head -1}), later output is discarded and
    C{on_broken} is called (to stop the command), instead of a traceback.
    """

    def __init__(self) -> None:
        self.broken = False
        self.on_broken: Callable[[], object] | None = None

    def write(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            self.broken = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            if self.on_broken is not None:
                self.on_broken()

    def line(self, message: bytes) -> None:
        """
        One message on its own line (its own line ending, if any, replaced).
        """
        self.write(split_line_ending(message)[0] + b"\n")


@implementer(IHalfCloseableProtocol)
class StandardInputLines(LineReceiver):
    """
    Feed each line of standard input to a conversation; end it at end of
    input or at a line C{exit}.  Standard output goes through the same
    (non-blocking) standard I/O transport.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(
        self, conversation: GreetingClientProtocol, on_skipped: Callable[[str], object]
    ) -> None:
        self.conversation = conversation
        self.on_skipped = on_skipped
        self.closed: Deferred[None] = Deferred()
        self._ended = False

    def lineReceived(self, line: bytes) -> None:
        if self._ended:
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if line == EXIT:
            self._end()
            return
        try:
            self.conversation.send(line)
        except ValueError as error:
            self.on_skipped(f"skipped line: {error}")

    def readConnectionLost(self) -> None:
        if self._buffer and not self._ended:
            rest, self._buffer = self._buffer, b""
            self.lineReceived(rest)
        self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.conversation.finish()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.readConnectionLost()
        if not self.closed.called:
            self.closed.callback(None)
