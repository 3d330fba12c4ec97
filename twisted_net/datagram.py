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
import errno
import ipaddress
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol

from .address import format_host_port
from .config import ServerConfig
from .hello import (
    ERROR_PREFIX,
    REPLY_PREFIX,
    error_line,
    is_error,
    is_reply,
    reply,
    split_line_ending,
)
from .logs import NamedLogger
from .stats import Counters, RefusalLog

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

_LOOP_PREFIXES: Final = (REPLY_PREFIX, ERROR_PREFIX)
"""How every datagram L{is_reply} or L{is_error} refuses begins."""


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
        self._host_checked: dict[str, bool] = {}

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

    def _refusal(self, data: bytes, host: str, port: int) -> str | None:
        if port in CLASSIC_UDP_PORTS:
            return "udp-source-port"
        unanswerable = self._host_checked.get(host)
        if unanswerable is None:
            if len(self._host_checked) > 65536:
                self._host_checked.clear()
            unanswerable = self._host_checked[host] = _is_unanswerable_host(host)
        if unanswerable:
            return "udp-source-address"
        if is_reply(data) or is_error(data):
            return "udp-loop"
        if self.buckets is not None and not self.buckets.allow(host):
            return "udp-rate"
        return None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        host, port = addr[0], addr[1]
        counters = self.counters
        counters.bytes_in += len(datagram)
        config = self.config
        if (
            self._host_checked.get(host) is False
            and port not in CLASSIC_UDP_PORTS
            and not datagram.startswith(_LOOP_PREFIXES)
            and not datagram.endswith(b"\n")
            and len(datagram) <= config.max_message
            and not config.log_messages
        ):
            # The common datagram, told apart without the general path's
            # calls: from a host found answerable before and no classic
            # service port, neither a reply nor an error (no loop), one
            # message without a line ending, short enough, not logged.
            # Only the rate is left to check, as in _refusal.
            if self.buckets is not None and not self.buckets.allow(host):
                self.refusals.refuse("udp-rate", format_host_port(host, port))
            elif self._send(reply(datagram), addr):
                counters.datagrams_answered += 1
            return
        refusal = self._refusal(datagram, host, port)
        if refusal is not None:
            self.refusals.refuse(refusal, format_host_port(host, port))
            return
        message, ending = split_line_ending(datagram)
        limit = self.config.max_message
        if len(message) > limit:
            self.refusals.refuse("max-message", format_host_port(host, port))
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
            counters.datagrams_answered += 1

    def _send(self, payload: bytes, addr: Any) -> bool:
        """
        Send straight through the port's socket: the address came from
        C{recvfrom}, so the per-datagram address parsing of
        C{udp.Port.write} is not needed.  Send errors are counted; they
        never stop the port.
        """
        transport = self.transport
        assert transport is not None
        sock = getattr(transport, "socket", None)
        try:
            if sock is not None:
                sock.sendto(payload, addr)
            else:
                transport.write(payload, addr)
        except OSError as error:
            self.counters.udp_send_errors += 1
            self.refusals.refuse(
                "udp-send-" + errno.errorcode.get(error.errno or 0, "error").lower(),
                format_host_port(addr[0], addr[1]),
            )
            return False
        self.counters.bytes_out += len(payload)
        return True
