"""
The TCP side: the two framings as Protocols, and the Factory that owns the
limits shared by all connections.

Data flows one way: a read arrives in C{dataReceived}, the framing cuts it
into messages, L{twisted_net.hello.reply} makes each answer, and every answer
of one read leaves in one write.  Limits (idle, message and write deadlines,
connection caps, backpressure) are enforced from the side, by the factory's
once-a-second L{Watchdog} and the transport's producer calls; none of them
adds a timer or a clock read per message.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import ClassVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_net.address import format_address, format_host_port, peer_host
from twisted_net.config import ServerConfig
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
    error_line,
    is_exit,
    reply,
    split_seed_read,
)
from twisted_net.logs import NamedLogger
from twisted_net.server.stats import Counters, RefusalLog

__all__ = [
    "FRAMINGS",
    "GreetingFactory",
    "GreetingProtocol",
    "LineProtocol",
    "SeedProtocol",
]

_PIPELINED_JOIN = REPLY_SUFFIX + b"\n" + REPLY_PREFIX
_PIPELINED_ENDS = (REPLY_PREFIX, REPLY_SUFFIX + b"\n")
"""C{_PIPELINED_JOIN.join(lines).join(_PIPELINED_ENDS)} answers each of
C{lines} with its reply and a line feed: C{Hello, a!\\nHello, b!\\n}."""

# Why reading is paused (bit flags: reading resumes when none is left).
_BACKPRESSURE = 1
_QUEUE_FULL = 2
_DRAINING = 4


@implementer(IHalfCloseableProtocol, IPushProducer)
class GreetingProtocol(Protocol):
    """
    One TCP session of the greeting protocol; subclasses choose the framing.

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
        # twisted.internet.tcp is looked up, not imported: this module is
        # imported before the reactor, which twisted_net.netepoll.lean may import
        # without pyOpenSSL; a transport of it means it is there.
        tcp = sys.modules.get("twisted.internet.tcp")
        if tcp is not None and type(transport).getPeer is tcp.Server.getPeer:
            # What Twisted's TCP transport would wrap in an address object,
            # read directly.  A wrapper (TLS, the PROXY header) has its own
            # getPeer and takes the general path.
            host, port = transport.client[:2]  # type: ignore[attr-defined]
            self._peer = format_host_port(host, port)
            self._peer_host = host
        else:
            address = transport.getPeer()
            self._peer = format_address(address)
            self._peer_host = peer_host(address)

    # Session life cycle ---------------------------------------------------

    def connectionMade(self) -> None:
        # An instance attribute, read on every message: see
        # WriteThroughServer.__init__ in twisted_net.netepoll.reactor for why.
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
        # A class attribute, not getattr(transport, ...): a wrapping
        # transport (TLS) forwards unknown attributes to the one it wraps.
        send_first = getattr(type(transport), "send_first", None)
        if send_first is not None:
            send_first(transport, greeting)
        else:
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
        """
        Our side was shut down; nothing more can be sent.
        """
        self._closing = True
        self._pending = None

    def end_of_input(self) -> None:
        """
        Hook for framings that hold a partial message when input ends.
        """

    # Producer interface (backpressure) ----------------------------------

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full: stop reading from the peer.
        """
        self.paused_since = self.factory.clock.seconds()
        self._pause(_BACKPRESSURE)

    def resumeProducing(self) -> None:
        """
        The transport drained its write buffer: read again.
        """
        self.paused_since = None
        self._resume(_BACKPRESSURE)

    def stopProducing(self) -> None:
        """
        The connection is going away; nothing to release here.
        """

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
        delay = factory.config.delay
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
        self._pending.append((self.factory.clock.seconds() + delay, payload, then_close))
        self._pending_bytes += len(payload)
        self.factory.counters.messages_answered += messages
        if self._pending_bytes > self.factory.config.queue_limit:
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
        now = self.factory.clock.seconds()
        pending = self._pending
        if pending is None:
            return
        while pending and pending[0][0] <= now:
            due, payload, then_close = pending.popleft()
            self._pending_bytes -= len(payload)
            if payload:
                self._write(payload)
                self.factory.counters.observe_latency(now - due + self.factory.config.delay)
            if then_close:
                self._pending = None
                self.close()
                return
        if self._pending_bytes <= self.factory.config.queue_limit // 2:
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
        """
        Close once every reply already written has been sent.
        """
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
        """
        self.factory.refusals.refuse(reason, self.peer)
        self.send(error_line(message), 0, then_close=True)

    def drain(self) -> None:
        """
        Stop reading (the server is stopping), send what is owed, close.
        """
        self._pause(_DRAINING)
        self._close_when_idle()

    def abort(self, reason: str) -> None:
        """
        Drop the connection at once, discarding unsent replies.
        """
        self.factory.refusals.refuse(reason, self.peer)
        self._closing = True
        self.transport.abortConnection()  # type: ignore[union-attr]

    def check_deadlines(self, now: float) -> None:
        """
        Called about once a second by the factory's watchdog; enforces the
        idle, message and write deadlines of L{ServerConfig}.
        """
        config = self.factory.config
        if self.closing_since is not None or self.paused_since is not None:
            since = self.closing_since if self.closing_since is not None else self.paused_since
            assert since is not None
            if config.write_timeout and now - since > config.write_timeout:
                self.abort("write-timeout")
            return
        if self._closing:
            return
        if (
            self.partial_since is not None
            and config.message_timeout
            and now - self.partial_since > config.message_timeout
        ):
            self.refuse("message-timeout", "message not completed in time")
        elif config.idle_timeout and now - self.last_activity > config.idle_timeout:
            self.refuse("idle-timeout", "idle timeout")

    def log_message(self, message: bytes) -> None:
        """
        Log one message (only when C{log_messages} is on).
        """
        self.log.info(
            "Received from {peer}: {message!r}",
            event="message",
            peer=self.peer,
            message=message,
        )


class SeedProtocol(GreetingProtocol):
    """
    The tutorial's protocol, byte for byte: C{Welcome!} with no line ending;
    each read is a message answered with C{Hello, M!}; C{exit} closes.

    For people typing into C{nc}: a read that holds line feeds is one message
    per line, and each reply ends with the line's own ending
    (C{Michael\\n} gets C{Hello, Michael!\\n}).
    """

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        factory = self.factory
        self.last_activity = factory.now
        counters = factory.counters
        size = len(data)
        counters.bytes_in += size
        if size <= factory.immediate_limit and LINE_FEED not in data and data != EXIT:
            # The tutorial's case, one read holding one ordinary message,
            # answered at once (no --delay, no message logging): what send()
            # and reply() do, inlined, since every message of every
            # connection comes through here.
            counters.messages_answered += 1
            counters.bytes_out += size + REPLY_OVERHEAD
            self.transport.write(REPLY_TEMPLATE % data)  # type: ignore[union-attr]
            return
        if data == EXIT and factory.immediate_limit >= 0:
            # The tutorial's last message, on its own and with nothing
            # delayed: close once every earlier reply is sent.
            self.close()
            return
        if (
            size <= factory.immediate_limit
            and data[-1] == LINE_FEED
            and CARRIAGE_RETURN not in data
        ):
            # Whole lines ending in a bare line feed, as a pipelining client
            # sends them: answered with one join instead of a loop, unless
            # one of them is exit.
            lines = data[:-1].split(b"\n")
            if EXIT not in lines:
                payload = _PIPELINED_JOIN.join(lines).join(_PIPELINED_ENDS)
                counters.messages_answered += len(lines)
                counters.bytes_out += len(payload)
                self.transport.write(payload)  # type: ignore[union-attr]
                return
        config = factory.config
        if LINE_FEED in data or size > config.max_message or is_exit(data) or config.log_messages:
            self._answer_each(split_seed_read(data))
            return
        self.send(reply(data), 1)

    def _answer_each(self, messages: list[tuple[bytes, bytes]]) -> None:
        """
        Answer the C{(message, ending)} pairs of one read in order, up to an
        exit or a message over the limit.
        """
        config = self.factory.config
        limit = config.max_message
        log_messages = config.log_messages
        out: list[bytes] = []
        answered = 0
        for message, ending in messages:
            if log_messages:
                self.log_message(message)
            if is_exit(message):
                self.send(b"".join(out), answered, then_close=True)
                return
            if len(message) > limit:
                self.send(b"".join(out), answered)
                self.refuse("max-message", f"message longer than {limit} bytes")
                return
            out.append(reply(message) + ending)
            answered += 1
        self.send(b"".join(out), answered)


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

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        factory = self.factory
        factory.counters.bytes_in += len(data)
        self.last_activity = factory.now
        self._take(data)

    def _take(self, data: bytes) -> None:
        limit = self.factory.config.max_message
        if LINE_FEED not in data:
            length = self._partial_length + len(data)
            if length > limit + 1:
                self._too_long([], limit)
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
        out: list[bytes] = []
        log_messages = self.factory.config.log_messages
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if log_messages:
                self.log_message(line)
            if len(line) > limit:
                self._too_long(out, limit)
                return
            if is_exit(line):
                self.send(b"".join(out), len(out), then_close=True)
                return
            out.append(reply(line) + LINE_END)
        if len(rest) > limit + 1:
            self._too_long(out, limit)
            return
        if rest:
            self._partial = [rest]
            self._partial_length = len(rest)
            self.partial_since = self.factory.now
        else:
            self.partial_since = None
        if out:
            self.send(b"".join(out), len(out))

    def _forget_partial(self) -> None:
        self._partial = None
        self._partial_length = 0
        self.partial_since = None

    def _too_long(self, answered: list[bytes], limit: int) -> None:
        self._forget_partial()
        self.send(b"".join(answered), len(answered))
        self.refuse("max-message", f"message longer than {limit} bytes")

    def end_of_input(self) -> None:
        """
        A last line without its line feed is still answered when the peer
        half-closes.
        """
        if self._partial is not None and not self._closing:
            self._take(b"\n")


FRAMINGS: dict[str, type[GreetingProtocol]] = {
    "seed": SeedProtocol,
    "line": LineProtocol,
}
"""The framings by their command-line name."""


class Watchdog:
    """
    One timer for all connections of a factory: about once a second it
    advances the factory's coarse clock and checks every connection's
    deadlines, so that no connection needs a timer of its own.
    """

    log = NamedLogger("twisted_net.stream")

    def __init__(self, factory: GreetingFactory, interval: float = 1.0) -> None:
        self.factory = factory
        self._loop = LoopingCall(self.tick)
        self._loop.clock = factory.clock
        self.interval = interval

    def start(self) -> None:
        if not self._loop.running:
            self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def tick(self) -> None:
        factory = self.factory
        factory.now = now = factory.clock.seconds()
        for protocol in list(factory.sessions):
            try:
                protocol.check_deadlines(now)
            except Exception:
                # One broken connection must not stop the loop: that would
                # switch off every deadline of every connection.
                self.log.failure("Deadline check failed for {peer}", peer=protocol.peer)


class GreetingFactory(Factory):
    """
    Builds greeting sessions and enforces what they share: connection caps,
    the watchdog, counters, and a graceful drain on stop.

    @ivar counters: running totals, shared with the UDP side if wanted.
    @ivar sessions: the admitted connections now open.
    @ivar per_peer: how many of them each host has open, kept only while
        C{config.max_per_peer} is set (the only use of the count).
    @ivar now: a coarse clock (seconds), advanced by the watchdog; cheap to
        read on the per-message path.
    @ivar config: the limits and behaviour (L{ServerConfig}); assigning a
        new one updates C{immediate_limit}.
    @ivar immediate_limit: the longest message answered on the protocols'
        fast path (at once, unlogged): C{config.max_message}, or -1 when
        C{config} delays or logs messages.  Follows C{config}.
    """

    config: ServerConfig
    immediate_limit: int

    log = NamedLogger("twisted_net.stream")
    noisy = False

    def __init__(
        self,
        framing: str = "seed",
        config: ServerConfig | None = None,
        *,
        counters: Counters | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}: choose seed or line")
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        assert clock is not None
        self.protocol = FRAMINGS[framing]  # type: ignore[assignment]
        self.framing = framing
        self.config = config or ServerConfig()
        self.counters = counters or Counters()
        self.clock = clock
        self.refusals = RefusalLog(self.counters, clock)
        self.sessions: set[GreetingProtocol] = set()
        self.per_peer: dict[str, int] = {}
        self.now = clock.seconds()
        self.draining = False
        self._watchdog = Watchdog(self)
        self._closed_waiters: list[Deferred[None]] = []

    def __setattr__(self, name: str, value: object) -> None:
        # config stays a plain attribute (read often: a property would cost a
        # call each time); what follows from it is kept up to date here.
        object.__setattr__(self, name, value)
        if name == "config":
            assert isinstance(value, ServerConfig)
            immediate = value.delay <= 0 and not value.log_messages
            object.__setattr__(self, "immediate_limit", value.max_message if immediate else -1)

    def startFactory(self) -> None:
        self.draining = False
        self.now = self.clock.seconds()
        self._watchdog.start()

    def stopFactory(self) -> None:
        self._watchdog.stop()

    def admit(self, protocol: GreetingProtocol) -> str | None:
        """
        Register a new connection, or say why it is refused.

        @return: C{None} when admitted, else the refusal reason.
        """
        config = self.config
        if config.max_connections and len(self.sessions) >= config.max_connections:
            return "max-connections"
        if config.max_per_peer:
            host = protocol.peer_host
            count = self.per_peer.get(host, 0)
            if count >= config.max_per_peer:
                return "max-per-peer"
            self.per_peer[host] = count + 1
            protocol._counted_per_peer = True
        self.sessions.add(protocol)
        self.counters.connections_open += 1
        self.counters.connections_total += 1
        if config.log_connections:
            self.log.info(
                "Accept new connection from {peer}...",
                event="connection_opened",
                peer=protocol.peer,
            )
        return None

    def release(self, protocol: GreetingProtocol) -> None:
        """
        Forget a closed connection (capacity comes back).
        """
        self.sessions.discard(protocol)
        if protocol._counted_per_peer:
            protocol._counted_per_peer = False
            host = protocol.peer_host
            count = self.per_peer.get(host, 0) - 1
            if count > 0:
                self.per_peer[host] = count
            else:
                self.per_peer.pop(host, None)
        self.counters.connections_open -= 1
        if self.config.log_connections:
            self.log.info(
                "Connection from {peer} closed.", event="connection_closed", peer=protocol.peer
            )
        if not self.sessions and self._closed_waiters:
            waiters, self._closed_waiters = self._closed_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def drain(self, timeout: float | None = None) -> Deferred[None]:
        """
        Stop reading from every connection, send every reply owed, close.

        @param timeout: seconds after which the connections still open are
            aborted; default C{config.shutdown_timeout}.
        @return: a Deferred that fires when every connection has closed.
        """
        self.draining = True
        for protocol in list(self.sessions):
            protocol.drain()
        if not self.sessions:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._closed_waiters.append(done)
        limit = self.config.shutdown_timeout if timeout is None else timeout

        def abort_stragglers() -> None:
            for protocol in list(self.sessions):
                protocol.abort("shutdown-timeout")

        straggler_call = self.clock.callLater(limit, abort_stragglers)

        def cancel_abort(result: None) -> None:
            if straggler_call.active():
                straggler_call.cancel()

        done.addCallback(cancel_abort)
        return done
