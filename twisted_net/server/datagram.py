"""
The UDP side: answer every datagram C{M} with C{Hello, M!}, behind guards.

UDP sources can be forged, so before answering, the protocol refuses (counts,
and logs at a bounded rate) every datagram that could start a loop or an
amplification: replies and errors of this protocol, sources on the ports of
classic UDP services or port 0, broadcast, multicast and unspecified
sources, and sources over their per-host rate.  Oversize datagrams are
refused, never truncated.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol

from twisted_net.address import format_host_port
from twisted_net.config import ServerConfig
from twisted_net.hello import (
    LINE_FEED,
    LOOP_FIRST_BYTES,
    REPLY_OVERHEAD,
    REPLY_TEMPLATE,
    error_line,
    is_error,
    is_reply,
    reply,
    split_line_ending,
)
from twisted_net.logs import NamedLogger
from twisted_net.server.counters import Counters
from twisted_net.server.refusals import (
    MAX_MESSAGE,
    UDP_LOOP,
    UDP_RATE,
    UDP_SOURCE_ADDRESS,
    UDP_SOURCE_PORT,
    RefusalLog,
    udp_send_refusal,
)

__all__ = [
    "CLASSIC_UDP_PORTS",
    "GreetingDatagramProtocol",
    "TokenBuckets",
    "receive_buffer_size",
]

CLASSIC_UDP_PORTS: Final = frozenset(
    {0, 7, 9, 13, 17, 19, 37, 53, 123, 161, 389, 1900, 5353, 11211}
)
"""Source ports never answered: services that echo or amplify (and port 0)."""

_LINE_ENDING_ROOM: Final = 2


def receive_buffer_size(config: ServerConfig) -> int:
    """
    How many bytes to ask C{recvfrom} for: one more than the longest datagram
    answered, so that an oversize datagram is seen as such, never truncated
    silently into an answerable one.
    """
    return config.max_message + _LINE_ENDING_ROOM + 1


def _is_unanswerable_host(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_multicast
        or address.is_unspecified
        or address == ipaddress.IPv4Address("255.255.255.255")
    )


class TokenBuckets:
    """
    A token bucket per source host: C{rate} tokens a second, at most
    C{burst} saved up.  The table forgets full buckets when it grows, so a
    flood of forged sources cannot grow it without bound.

    @ivar max_hosts: size at which idle (full) buckets are forgotten.
    """

    max_hosts = 65536

    def __init__(self, rate: float, burst: int, clock: IReactorTime) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.clock = clock
        self._buckets: dict[str, list[float]] = {}

    def allow(self, host: str) -> bool:
        """
        Take one token for C{host}; C{False} when it has none left.
        """
        now = self.clock.seconds()
        bucket = self._buckets.get(host)
        if bucket is None:
            if len(self._buckets) >= self.max_hosts:
                self._forget_idle(now)
            self._buckets[host] = [self.burst - 1.0, now]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def _forget_idle(self, now: float) -> None:
        refill = self.burst / self.rate
        self._buckets = {
            host: bucket for host, bucket in self._buckets.items() if now - bucket[1] < refill
        }
        if len(self._buckets) >= self.max_hosts:
            self._buckets.clear()


class GreetingDatagramProtocol(DatagramProtocol):
    """
    Answer each datagram C{M} from an address with C{Hello, M!} (a trailing
    C{\\n} or C{\\r\\n} goes after the C{!}), unless a guard refuses it.

    Listen with C{maxPacketSize=receive_buffer_size(config)} so that
    oversize datagrams are recognised.
    """

    log = NamedLogger("twisted_net.datagram")
    noisy = False
    max_sources = 16384
    """How many verdicts on source hosts, and on answerable sources, are
    remembered at most (each at most about 200 bytes)."""

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        counters: Counters | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        assert clock is not None
        self.config = config or ServerConfig()
        self.counters = counters or Counters()
        self.refusals = RefusalLog(self.counters, clock)
        self.buckets = (
            TokenBuckets(self.config.udp_rate, self.config.udp_burst, clock)
            if self.config.udp_rate > 0
            else None
        )
        self._answerable_sources: set[Any] = set()
        self._host_verdicts: dict[str, bool] = {}

    def for_another_port(self) -> GreetingDatagramProtocol:
        """
        A protocol for one more UDP port (a C{DatagramProtocol} serves one
        port only), sharing this one's config, counters, refusal log and
        rate buckets, so that a source's rate is counted across all ports.
        """
        twin = copy.copy(self)
        twin.transport = None
        twin.numPorts = 0
        return twin

    def _source_refusal(self, host: str, port: int) -> str | None:
        """
        Why datagrams from C{(host, port)} are never answered, if they are
        not: a classic service port, or a broadcast, multicast, unspecified
        or unparsable host.

        Verdicts are remembered, so that none is worked out per datagram:
        per host (its address parsed once), and answerable C{(host, port)}
        sources as a set, for the shortcut of L{datagramsReceived}.  Each
        is forgotten when it holds C{max_sources} entries, so that a flood
        of forged sources cannot grow them without bound.
        """
        if port in CLASSIC_UDP_PORTS:
            return UDP_SOURCE_PORT
        verdicts = self._host_verdicts
        unanswerable = verdicts.get(host)
        if unanswerable is None:
            if len(verdicts) >= self.max_sources:
                verdicts.clear()
            unanswerable = verdicts[host] = _is_unanswerable_host(host)
        if unanswerable:
            return UDP_SOURCE_ADDRESS
        answerable, source = self._answerable_sources, (host, port)
        if source not in answerable:
            if len(answerable) >= self.max_sources:
                answerable.clear()
            answerable.add(source)
        return None

    def _refusal(self, data: bytes, host: str, port: int) -> str | None:
        refusal = self._source_refusal(host, port)
        if refusal is not None:
            return refusal
        if is_reply(data) or is_error(data):
            return UDP_LOOP
        if self.buckets is not None and not self.buckets.allow(host):
            return UDP_RATE
        return None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Answer, refuse and count one datagram (from Twisted's own
        C{udp.Port}): a batch of one for L{datagramsReceived}.
        """
        self.datagramsReceived(((datagram, addr),))

    def datagramsReceived(self, datagrams: Iterable[tuple[bytes, Any]]) -> None:
        """
        Answer, refuse and count datagrams, in order: the one place that
        checks them.  C{LeanDatagramPort} of C{twisted_net.netepoll} hands
        over what it reads in batches, so that what this protocol looks up
        and counts is done once per batch instead of once per datagram.

        The common datagram is told apart with cheap tests only, and only
        its rate is left to check: it comes from a source found answerable
        before (host and port, by L{_source_refusal}); its first byte is not
        one L{is_reply} or L{is_error} could refuse (L{LOOP_FIRST_BYTES});
        it holds no line feed (one message without a line ending, so the
        answer is its reply itself); it is within C{max_message}, and
        messages are not logged.  Everything else takes the general path,
        L{_answer}, with every guard in turn.  A datagram whose handling
        raises is logged and does not stop the batch.

        @param datagrams: C{(datagram, (host, port))} pairs.
        """
        config = self.config
        # -1: no datagram is common when every message is to be logged.
        limit = -1 if config.log_messages else config.max_message
        answerable = self._answerable_sources
        loop_first = LOOP_FIRST_BYTES
        line_feed = LINE_FEED
        reply_format = REPLY_TEMPLATE
        buckets = self.buckets
        send = self._sender()
        counters = self.counters
        answered = answered_bytes = 0
        try:
            for datagram, addr in datagrams:
                if (
                    addr in answerable
                    and datagram
                    and datagram[0] not in loop_first
                    and line_feed not in datagram
                    and (size := len(datagram)) <= limit
                ):
                    if buckets is not None and not buckets.allow(addr[0]):
                        counters.bytes_in += size
                        self.refusals.refuse(UDP_RATE, format_host_port(addr[0], addr[1]))
                        continue
                    try:
                        send(reply_format % datagram, addr)
                    except OSError as error:
                        counters.bytes_in += size
                        self._send_failed(error, addr)
                        continue
                    answered += 1
                    answered_bytes += size
                else:
                    self._answer_safely(datagram, addr)
        finally:
            # Counted here once for the whole batch: nothing reads the
            # counters while this method runs.
            counters.bytes_in += answered_bytes
            counters.bytes_out += answered_bytes + answered * REPLY_OVERHEAD
            counters.datagrams_answered += answered

    def _answer_safely(self, datagram: bytes, addr: Any) -> None:
        try:
            self._answer(datagram, addr)
        except Exception:
            self.log.failure(
                "Unhandled error answering {peer}",
                peer=format_host_port(addr[0], addr[1]),
            )

    def _answer(self, datagram: bytes, addr: Any) -> None:
        """
        The general path: every guard in turn, then the answer.
        """
        host, port = addr[0], addr[1]
        self.counters.bytes_in += len(datagram)
        refusal = self._refusal(datagram, host, port)
        if refusal is not None:
            self.refusals.refuse(refusal, format_host_port(host, port))
            return
        message, ending = split_line_ending(datagram)
        limit = self.config.max_message
        if len(message) > limit:
            self.refusals.refuse(MAX_MESSAGE, format_host_port(host, port))
            self._send(error_line(f"message longer than {limit} bytes"), addr)
            return
        if self.config.log_messages:
            self.log.info(
                "Received from {peer}: {message!r}",
                event="datagram",
                peer=format_host_port(host, port),
                message=message,
            )
        if self._send(reply(message) + ending, addr):
            self.counters.datagrams_answered += 1

    def _sender(self) -> Callable[[bytes, Any], object]:
        """
        How to send one datagram: straight through the port's socket, when
        it has one, because the address came from C{recvfrom} and the
        per-datagram address checks of C{udp.Port.write} are not needed.
        """
        transport = self.transport
        assert transport is not None
        sock = getattr(transport, "socket", None)
        return transport.write if sock is None else sock.sendto

    def _send(self, payload: bytes, addr: Any) -> bool:
        """
        Send one datagram (see L{_sender}).  Send errors are counted; they
        never stop the port.
        """
        try:
            self._sender()(payload, addr)
        except OSError as error:
            self._send_failed(error, addr)
            return False
        self.counters.bytes_out += len(payload)
        return True

    def _send_failed(self, error: OSError, addr: Any) -> None:
        self.counters.udp_send_errors += 1
        self.refusals.refuse(udp_send_refusal(error), format_host_port(addr[0], addr[1]))
