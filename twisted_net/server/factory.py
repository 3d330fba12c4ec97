"""
The TCP factory: what all sessions share (connection caps, counters, the
refusal log, a graceful drain) and the one timer that watches them all.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import LogLevel

from twisted_net.config import ServerConfig
from twisted_net.hello import FRAMING_CHOICES
from twisted_net.logs import NamedLogger, PreparedEvent
from twisted_net.server.counters import Counters
from twisted_net.server.framing import FRAMINGS
from twisted_net.server.refusals import (
    MAX_CONNECTIONS,
    MAX_PER_PEER,
    SHUTDOWN_TIMEOUT,
    RefusalLog,
)
from twisted_net.server.session import GreetingProtocol

__all__ = ["GreetingFactory", "Watchdog"]

OPENED_FORMAT = "Accept new connection from {peer}..."
"""The tutorial's line for a connection accepted (event C{connection_opened})."""
CLOSED_FORMAT = "Connection from {peer} closed."
"""The tutorial's line for a connection closed (event C{connection_closed})."""


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
    @ivar immediate_limit: the longest message a framing's fast path may
        answer (at once, unlogged): C{config.max_message}, or -1 when
        C{config} delays or logs messages.  Set with C{config} (see
        L{configure}); a plain attribute, read once per read.
    """

    immediate_limit: int
    _config: ServerConfig

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
            raise ValueError(f"unknown framing {framing!r}: choose {FRAMING_CHOICES}")
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        assert clock is not None
        self.protocol = FRAMINGS[framing]  # type: ignore[assignment]
        self.framing = framing
        self.configure(config or ServerConfig())
        self.counters = counters or Counters()
        self.clock = clock
        self.refusals = RefusalLog(self.counters, clock)
        self.sessions: set[GreetingProtocol] = set()
        self.per_peer: dict[str, int] = {}
        self.now = clock.seconds()
        self.draining = False
        self._watchdog = Watchdog(self)
        self._closed_waiters: list[Deferred[None]] = []
        log = self.log
        self._log_opened = PreparedEvent(
            log, LogLevel.info, OPENED_FORMAT, event="connection_opened", field="peer"
        )
        self._log_closed = PreparedEvent(
            log, LogLevel.info, CLOSED_FORMAT, event="connection_closed", field="peer"
        )

    def configure(self, config: ServerConfig) -> None:
        """
        Use C{config} from now on, and derive what the fast paths read from
        it (L{immediate_limit}).  Assigning C{factory.config} calls this.

        The sessions read the plain field C{_config} on their per-read
        paths: a property read costs a Python call, several times a plain
        attribute's price, for every read.
        """
        self._config = config
        immediate = config.delay <= 0 and not config.log_messages
        self.immediate_limit = config.max_message if immediate else -1

    @property
    def config(self) -> ServerConfig:
        """
        The limits and behaviour (L{ServerConfig}); assign to change them
        (through L{configure}).
        """
        return self._config

    @config.setter
    def config(self, config: ServerConfig) -> None:
        self.configure(config)

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
        config = self._config
        if config.max_connections and len(self.sessions) >= config.max_connections:
            return MAX_CONNECTIONS
        if config.max_per_peer:
            host = protocol.peer_host
            count = self.per_peer.get(host, 0)
            if count >= config.max_per_peer:
                return MAX_PER_PEER
            self.per_peer[host] = count + 1
            protocol._counted_per_peer = True
        self.sessions.add(protocol)
        self.counters.connections_open += 1
        self.counters.connections_total += 1
        if config.log_connections:
            self._log_opened(protocol.peer)
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
        if self._config.log_connections:
            self._log_closed(protocol.peer)
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
        limit = self._config.shutdown_timeout if timeout is None else timeout

        def abort_stragglers() -> None:
            for protocol in list(self.sessions):
                protocol.abort(SHUTDOWN_TIMEOUT)

        straggler_call = self.clock.callLater(limit, abort_stragglers)

        def cancel_abort(result: None) -> None:
            if straggler_call.active():
                straggler_call.cancel()

        done.addCallback(cancel_abort)
        return done
