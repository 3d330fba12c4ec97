"""
One TCP session of the greeting protocol, whatever its framing.

Data flows one way: a read arrives in L{GreetingProtocol.dataReceived}, the
framing's L{GreetingProtocol.cut} cuts it into messages, and
L{GreetingProtocol.messagesReceived} answers them with
L{twisted_net.hello.reply}, every answer of one read in one write.  Limits
(idle, message and write deadlines, connection caps, backpressure) watch
from the side: the factory's once-a-second watchdog calls
L{GreetingProtocol.check_deadlines}, and the transport calls the producer
methods; none of them adds a timer or a clock read per message.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, ClassVar

from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_net.address import format_address, peer_host
from twisted_net.hello import GREETING, error_line, is_exit, reply
from twisted_net.logs import NamedLogger
from twisted_net.server.refusals import (
    IDLE_TIMEOUT,
    MAX_MESSAGE,
    MESSAGE_TIMEOUT,
    WRITE_TIMEOUT,
)

if TYPE_CHECKING:
    from twisted_net.server.factory import GreetingFactory

__all__ = ["GreetingProtocol"]

# Why reading is paused (bit flags: reading resumes when none is left).
_BACKPRESSURE = 1
_QUEUE_FULL = 2
_DRAINING = 4


@implementer(IHalfCloseableProtocol, IPushProducer)
class GreetingProtocol(Protocol):
    """
    One TCP session of the greeting protocol; subclasses choose the framing
    by implementing L{cut}.

    The protocol registers itself with its transport as a streaming
    producer: when the peer stops reading and the transport's write buffer
    fills up, the transport calls L{pauseProducing} and the protocol stops
    reading from that peer until its replies drain.

    @cvar greeting: the bytes sent when the connection opens.
    """

    greeting: ClassVar[bytes] = GREETING
    factory: GreetingFactory

    log = NamedLogger("twisted_net.stream")

    # Per-connection state starts as these class attributes, so that an
    # instance only stores what it changes (10,000 idle connections should
    # cost as little memory as possible).
    _peer: str | None = None
    _peer_host = ""
    last_activity = 0.0
    paused_since: float | None = None
    closing_since: float | None = None
    partial_since: float | None = None
    _admitted = False
    # Counted in the factory's per-host table (only with a per-host limit).
    _counted_per_peer = False
    _closing = False
    _read_closed = False
    _producing = False
    _paused_by = 0
    _pending: deque[tuple[float, bytes, bool]] | None = None
    _pending_bytes = 0
    _timer: IDelayedCall | None = None

    # The peer, described when first needed ---------------------------------

    @property
    def peer(self) -> str:
        """
        The peer's address as logged (C{HOST:PORT}); C{""} before the
        connection is made.  Described on first use (a refusal, a log line,
        the per-host limit), not for every connection.
        """
        if self._peer is None:
            self._describe_peer()
        return self._peer or ""

    @peer.setter
    def peer(self, value: str) -> None:
        self._peer = value

    @property
    def peer_host(self) -> str:
        """
        The peer's host, the key of the per-host limit (C{"unix"} for UNIX
        sockets).
        """
        if self._peer is None:
            self._describe_peer()
        return self._peer_host

    @peer_host.setter
    def peer_host(self, value: str) -> None:
        self._peer_host = value

    def _describe_peer(self) -> None:
        transport = self.transport
        if transport is None:
            return
        address = transport.getPeer()
        self._peer = format_address(address)
        self._peer_host = peer_host(address)

    # Session life cycle ---------------------------------------------------

    def connectionMade(self) -> None:
        # An instance attribute, read on every message (docs/PERFORMANCE.md).
        self._closing = False
        factory = self.factory
        refusal = factory.admit(self)
        if refusal is not None:
            self._closing = True
            factory.refusals.refuse(refusal, self.peer)
            self.transport.write(error_line("server busy"))  # type: ignore[union-attr]
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self._admitted = True
        self.last_activity = factory.now
        # The greeting goes out before the protocol becomes the transport's
        # producer: a TLS transport buffers it until its handshake is done
        # and pauses its producer meanwhile, and pausing would stop reading
        # the very handshake it waits for.
        transport = self.transport
        greeting = self.greeting
        factory.counters.bytes_out += len(greeting)
        transport.write(greeting)  # type: ignore[union-attr]
        transport.registerProducer(self, True)  # type: ignore[union-attr]
        self._producing = True
        if factory.draining:
            self.drain()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closing = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._pending = None
        if self._admitted:
            self._admitted = False
            self.factory.release(self)

    def readConnectionLost(self) -> None:
        """
        The peer shut down its side of the connection: answer everything it
        sent, then close.
        """
        self._read_closed = True
        self.end_of_input()
        self._close_when_idle()

    def writeConnectionLost(self) -> None:
        """Our side was shut down; nothing more can be sent."""
        self._closing = True
        self._pending = None

    # Reading: bytes, then messages, then answers ----------------------------

    def dataReceived(self, data: bytes) -> None:
        """
        Note the activity and count the bytes of one read, then let the
        framing cut them into messages (L{cut}).
        """
        if self._closing:
            return
        factory = self.factory
        factory.counters.bytes_in += len(data)
        self.last_activity = factory.now
        self.cut(data)

    def cut(self, data: bytes) -> None:
        """
        The framing: cut the bytes of one read into messages and hand the
        complete ones to L{messagesReceived}.  Overridden by every framing.
        """
        raise NotImplementedError(f"{type(self).__name__} has no framing")

    def end_of_input(self) -> None:
        """Hook for framings that hold a partial message when input ends."""

    def messagesReceived(self, messages: list[tuple[bytes, bytes]]) -> None:
        """
        Answer the messages of one read, in order: the one answering
        policy of every framing.

        Each message is logged when C{log_messages} is on; an exit closes
        after the earlier answers, and so does a message over
        C{max_message}, after an error line; every other message gets its
        reply followed by its ending.  The answers leave in one L{send}.

        @param messages: C{(message, ending)} pairs: the message without
            its line ending, and the ending its reply gets.
        """
        # The factory's plain config field, not its property: this runs for
        # every read (see GreetingFactory.configure).
        config = self.factory._config
        limit = config.max_message
        log_messages = config.log_messages
        out: list[bytes] = []
        for message, ending in messages:
            if log_messages:
                self.log_message(message)
            if is_exit(message):
                self.send(b"".join(out), len(out), then_close=True)
                return
            if len(message) > limit:
                self.send(b"".join(out), len(out))
                self.refuse_too_long()
                return
            out.append(reply(message) + ending)
        if out:
            self.send(b"".join(out), len(out))

    def refuse_too_long(self) -> None:
        """Refuse a message (complete or not) over C{max_message}."""
        limit = self.factory.config.max_message
        self.refuse(MAX_MESSAGE, f"message longer than {limit} bytes")

    # Producer interface (backpressure) ----------------------------------

    def pauseProducing(self) -> None:
        """The transport's write buffer is full: stop reading from the peer."""
        self.paused_since = self.factory.clock.seconds()
        self._pause(_BACKPRESSURE)

    def resumeProducing(self) -> None:
        """The transport drained its write buffer: read again."""
        self.paused_since = None
        self._resume(_BACKPRESSURE)

    def stopProducing(self) -> None:
        """The connection is going away; nothing to release here."""

    def _pause(self, reason: int) -> None:
        if not self._paused_by and not self._closing:
            self.transport.pauseProducing()  # type: ignore[union-attr]
        self._paused_by |= reason

    def _resume(self, reason: int) -> None:
        if not self._paused_by & reason:
            return
        self._paused_by &= ~reason
        if not self._paused_by and not self._closing and not self._read_closed:
            self.transport.resumeProducing()  # type: ignore[union-attr]

    # Sending ---------------------------------------------------------------

    def _write(self, payload: bytes) -> None:
        self.factory.counters.bytes_out += len(payload)
        self.transport.write(payload)  # type: ignore[union-attr]

    def send(self, payload: bytes, messages: int, then_close: bool = False) -> None:
        """
        Send the answers to C{messages} messages (C{payload}), now or after
        the configured delay, in order; then close if C{then_close}.
        """
        factory = self.factory
        config = factory._config
        delay = config.delay
        if delay <= 0 and not self._pending:
            counters = factory.counters
            if payload:
                counters.bytes_out += len(payload)
                self.transport.write(payload)  # type: ignore[union-attr]
            counters.messages_answered += messages
            if then_close:
                self.close()
            return
        if self._pending is None:
            self._pending = deque()
        self._pending.append((factory.clock.seconds() + delay, payload, then_close))
        self._pending_bytes += len(payload)
        factory.counters.messages_answered += messages
        if self._pending_bytes > config.queue_limit:
            self._pause(_QUEUE_FULL)
        if then_close:
            self._closing = True
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None or not self._pending:
            return
        due = self._pending[0][0]
        clock = self.factory.clock
        self._timer = clock.callLater(max(0.0, due - clock.seconds()), self._flush_due)

    def _flush_due(self) -> None:
        self._timer = None
        factory = self.factory
        now = factory.clock.seconds()
        pending = self._pending
        if pending is None:
            return
        while pending and pending[0][0] <= now:
            due, payload, then_close = pending.popleft()
            self._pending_bytes -= len(payload)
            if payload:
                self._write(payload)
                factory.counters.observe_latency(now - due + factory.config.delay)
            if then_close:
                self._pending = None
                self.close()
                return
        if self._pending_bytes <= factory.config.queue_limit // 2:
            self._resume(_QUEUE_FULL)
        if pending:
            self._schedule()
        else:
            self._pending = None
            self._close_when_idle()

    def _close_when_idle(self) -> None:
        if (self._read_closed or self.factory.draining) and not self._pending:
            self.close()

    def close(self) -> None:
        """Close once every reply already written has been sent."""
        self._closing = True
        if self.closing_since is not None:
            return
        self.closing_since = self.factory.clock.seconds()
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]

    def refuse(self, reason: str, message: str) -> None:
        """
        Tell the peer why in one error line, count and log the refusal, and
        close after every earlier reply.

        @param reason: the refusal's name, from L{twisted_net.server.refusals}.
        """
        self.factory.refusals.refuse(reason, self.peer)
        self.send(error_line(message), 0, then_close=True)

    def drain(self) -> None:
        """Stop reading (the server is stopping), send what is owed, close."""
        self._pause(_DRAINING)
        self._close_when_idle()

    def abort(self, reason: str) -> None:
        """Drop the connection at once, discarding unsent replies."""
        self.factory.refusals.refuse(reason, self.peer)
        self._closing = True
        self.transport.abortConnection()  # type: ignore[union-attr]

    def check_deadlines(self, now: float) -> None:
        """
        Called about once a second by the factory's watchdog; enforces the
        idle, message and write deadlines of L{twisted_net.config.ServerConfig}.
        """
        config = self.factory.config
        if self.closing_since is not None or self.paused_since is not None:
            since = self.closing_since if self.closing_since is not None else self.paused_since
            assert since is not None
            if config.write_timeout and now - since > config.write_timeout:
                self.abort(WRITE_TIMEOUT)
            return
        if self._closing:
            return
        if (
            self.partial_since is not None
            and config.message_timeout
            and now - self.partial_since > config.message_timeout
        ):
            self.refuse(MESSAGE_TIMEOUT, "message not completed in time")
        elif config.idle_timeout and now - self.last_activity > config.idle_timeout:
            self.refuse(IDLE_TIMEOUT, "idle timeout")

    def log_message(self, message: bytes) -> None:
        """Log one message (only when C{log_messages} is on)."""
        self.log.info(
            "Received from {peer}: {message!r}",
            event="message",
            peer=self.peer,
            message=message,
        )
