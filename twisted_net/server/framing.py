"""
The two TCP framings: how the bytes of a read are cut into messages.

A framing implements L{GreetingProtocol.cut} and nothing else: the session
answers the messages (L{GreetingProtocol.messagesReceived}).  L{FRAMINGS}
maps the names of L{twisted_net.hello.FRAMING_NAMES} to their protocols.

L{SeedProtocol} keeps one fast path, its C{dataReceived}, beside the general
path it shortcuts (L{GreetingProtocol.dataReceived}, L{SeedProtocol.cut},
L{GreetingProtocol.messagesReceived}), as Twisted's C{LineOnlyReceiver}
stands beside C{LineReceiver}; a test checks that both give the same bytes,
counters and closes.  Why it is worth it: see docs/PERFORMANCE.md, section
"The protocols".
"""

from __future__ import annotations

from typing import Final

from twisted_net.hello import (
    CARRIAGE_RETURN,
    EXIT,
    GREETING,
    LINE_END,
    LINE_FEED,
    REPLY_OVERHEAD,
    REPLY_PREFIX,
    REPLY_SUFFIX,
    REPLY_TEMPLATE,
    Framing,
    split_seed_read,
)
from twisted_net.server.session import GreetingProtocol

__all__ = ["FRAMINGS", "LineProtocol", "SeedProtocol"]

_PIPELINED_JOIN: Final = REPLY_SUFFIX + b"\n" + REPLY_PREFIX
_PIPELINED_ENDS: Final = (REPLY_PREFIX, REPLY_SUFFIX + b"\n")
"""C{_PIPELINED_JOIN.join(lines).join(_PIPELINED_ENDS)} answers each of
C{lines} with its reply and a line feed: C{Hello, a!\\nHello, b!\\n}."""


class SeedProtocol(GreetingProtocol):
    """
    The tutorial's protocol, byte for byte: C{Welcome!} with no line ending;
    each read is a message answered with C{Hello, M!}; C{exit} closes.

    For people typing into C{nc}: a read that holds line feeds is one message
    per line, and each reply ends with the line's own ending
    (C{Michael\\n} gets C{Hello, Michael!\\n}).
    """

    def cut(self, data: bytes) -> None:
        """
        One read is one message; a read with line feeds, one per line
        (L{twisted_net.hello.split_seed_read}).
        """
        self.messagesReceived(split_seed_read(data))

    def dataReceived(self, data: bytes) -> None:
        """
        The fast path of L{GreetingProtocol.dataReceived} for the reads that
        need no policy (answered at once, unlogged, within C{max_message}:
        C{factory.immediate_limit} says which): one message; C{exit}; whole
        lines ending in a bare line feed, as a pipelining client sends them,
        answered with one join.  Everything else takes the general path.
        """
        if self._closing:
            return
        factory = self.factory
        self.last_activity = factory.now
        counters = factory.counters
        size = len(data)
        counters.bytes_in += size
        # The test is "over the limit", not "within": CPython 3.11 only
        # specialises a comparison whose jump is short (see docs/PERFORMANCE.md,
        # section "Winning back the restructuring's cost").
        if size > factory.immediate_limit:
            self.messagesReceived(split_seed_read(data))
            return
        if LINE_FEED not in data:
            if data != EXIT:
                counters.messages_answered += 1
                counters.bytes_out += size + REPLY_OVERHEAD
                self.transport.write(REPLY_TEMPLATE % data)  # type: ignore[union-attr]
                return
            self.close()
            return
        if data[-1] == LINE_FEED and CARRIAGE_RETURN not in data:
            lines = data[:-1].split(b"\n")
            if EXIT not in lines:
                payload = _PIPELINED_JOIN.join(lines).join(_PIPELINED_ENDS)
                counters.messages_answered += len(lines)
                counters.bytes_out += len(payload)
                self.transport.write(payload)  # type: ignore[union-attr]
                return
        self.messagesReceived(split_seed_read(data))


class LineProtocol(GreetingProtocol):
    """
    The pipelining protocol: C{Welcome!\\r\\n}; messages are lines ending in
    C{\\n} (an optional C{\\r} before it is dropped), buffered until complete
    however the bytes arrive; replies are C{Hello, M!\\r\\n}; C{exit} closes
    after every earlier reply is sent.
    """

    greeting = GREETING + LINE_END
    # The pieces of a line still waiting for its line feed: kept as a list
    # so that a line arriving one byte per read costs linear, not
    # quadratic, time up to --max-message.
    _partial: list[bytes] | None = None
    _partial_length = 0

    def cut(self, data: bytes) -> None:
        """
        Add C{data} to the partial line; answer the lines it completes.  A
        partial line longer than C{max_message} (and its C{\\r}) is refused
        before its end arrives.
        """
        limit = self.factory._config.max_message
        if LINE_FEED not in data:
            length = self._partial_length + len(data)
            if length > limit + 1:
                self._forget_partial()
                self.refuse_too_long()
            elif data:
                if self._partial is None:
                    self._partial = [data]
                    self.partial_since = self.factory.now
                else:
                    self._partial.append(data)
                self._partial_length = length
            return
        if self._partial is not None:
            self._partial.append(data)
            data = b"".join(self._partial)
            self._forget_partial()
        lines = data.split(b"\n")
        rest = lines.pop()
        self.messagesReceived(
            [(line[:-1] if line.endswith(b"\r") else line, LINE_END) for line in lines]
        )
        if self._closing:
            return
        if len(rest) > limit + 1:
            self.partial_since = None
            self.refuse_too_long()
        elif rest:
            self._partial = [rest]
            self._partial_length = len(rest)
            self.partial_since = self.factory.now
        else:
            self.partial_since = None

    def _forget_partial(self) -> None:
        self._partial = None
        self._partial_length = 0
        self.partial_since = None

    def end_of_input(self) -> None:
        """
        A last line without its line feed is still answered when the peer
        half-closes.
        """
        if self._partial is not None and not self._closing:
            self.cut(b"\n")


FRAMINGS: Final[dict[Framing, type[GreetingProtocol]]] = {
    "seed": SeedProtocol,
    "line": LineProtocol,
}
"""The protocol of each framing, by its name (every name of
L{twisted_net.hello.FRAMING_NAMES}, in that order)."""
