"""
The refusal reasons, in one registry, and the rate-limited log that counts
them.

A reason is a short stable name: it is the C{reason} field of the
C{refused} log event and the C{reason} label of the
C{twisted_net_refusals} metric, so the strings never change.  Every module
that refuses names its reason from here, and L{twisted_net.server.metrics}
exports every reason of L{REFUSALS} from the start.
"""

from __future__ import annotations

import errno
from collections import Counter
from typing import Final

from twisted.internet.interfaces import IReactorTime

from twisted_net.logs import NamedLogger
from twisted_net.server.counters import Counters

__all__ = [
    "ACCEPT_EMFILE",
    "ACCEPT_ENOMEM",
    "ACCEPT_ERROR",
    "IDLE_TIMEOUT",
    "MAX_CONNECTIONS",
    "MAX_MESSAGE",
    "MAX_PER_PEER",
    "MESSAGE_TIMEOUT",
    "PROXY_HEADER",
    "PROXY_TIMEOUT",
    "REFUSALS",
    "SHUTDOWN_TIMEOUT",
    "TLS_HANDSHAKE",
    "TLS_TIMEOUT",
    "UDP_LOOP",
    "UDP_RATE",
    "UDP_SOURCE_ADDRESS",
    "UDP_SOURCE_PORT",
    "WRITE_TIMEOUT",
    "RefusalLog",
    "udp_send_refusal",
]

MAX_CONNECTIONS: Final = "max-connections"
MAX_PER_PEER: Final = "max-per-peer"
MAX_MESSAGE: Final = "max-message"
IDLE_TIMEOUT: Final = "idle-timeout"
MESSAGE_TIMEOUT: Final = "message-timeout"
WRITE_TIMEOUT: Final = "write-timeout"
SHUTDOWN_TIMEOUT: Final = "shutdown-timeout"
UDP_SOURCE_PORT: Final = "udp-source-port"
UDP_SOURCE_ADDRESS: Final = "udp-source-address"
UDP_LOOP: Final = "udp-loop"
UDP_RATE: Final = "udp-rate"
PROXY_HEADER: Final = "proxy-header"
PROXY_TIMEOUT: Final = "proxy-timeout"
TLS_HANDSHAKE: Final = "tls-handshake"
TLS_TIMEOUT: Final = "tls-timeout"
ACCEPT_EMFILE: Final = "accept-emfile"
ACCEPT_ENOMEM: Final = "accept-enomem"
ACCEPT_ERROR: Final = "accept-error"

REFUSALS: Final[dict[str, str]] = {
    MAX_CONNECTIONS: "a TCP connection over --max-connections, closed after one error line",
    MAX_PER_PEER: "a TCP connection over --max-per-peer from its host",
    MAX_MESSAGE: "a message or datagram longer than --max-message",
    IDLE_TIMEOUT: "a TCP connection silent for longer than --idle-timeout",
    MESSAGE_TIMEOUT: "a partial line not completed within --message-timeout",
    WRITE_TIMEOUT: "a peer that did not read its replies within --write-timeout",
    SHUTDOWN_TIMEOUT: "a connection still open when the stop's --shutdown-timeout ran out",
    UDP_SOURCE_PORT: "a datagram from a classic UDP service port, or port 0",
    UDP_SOURCE_ADDRESS: "a datagram from a broadcast, multicast or unspecified address",
    UDP_LOOP: "a datagram that is a reply or an error of this protocol (a loop)",
    UDP_RATE: "a datagram over its source host's --udp-rate",
    PROXY_HEADER: "a connection whose PROXY protocol header is invalid",
    PROXY_TIMEOUT: "a connection whose PROXY protocol header did not arrive in time",
    TLS_HANDSHAKE: "a TLS handshake that failed",
    TLS_TIMEOUT: "a TLS handshake that did not finish in time",
    ACCEPT_EMFILE: "connections left waiting while the process is out of descriptors",
    ACCEPT_ENOMEM: "connections left waiting while the kernel is out of memory",
    ACCEPT_ERROR: "an accept that failed for another reason",
}
"""Every fixed refusal reason, with what it refuses.  A UDP send error
adds one more, named after its errno (L{udp_send_refusal})."""

UDP_SEND_PREFIX: Final = "udp-send-"


def udp_send_refusal(error: OSError) -> str:
    """
    The reason for a UDP reply the kernel refused to send:
    C{udp-send-} and the errno's name (C{udp-send-econnrefused}).
    """
    return UDP_SEND_PREFIX + errno.errorcode.get(error.errno or 0, "error").lower()


class RefusalLog:
    """
    Count every refusal, but log each reason at most once per C{interval}.

    A flood of bad datagrams must not turn into a flood of log lines: the
    first refusal of a reason is logged at once, later ones are summed up in
    the next line for that reason (C{suppressed} field).
    """

    log = NamedLogger("twisted_net.stats")

    def __init__(self, counters: Counters, clock: IReactorTime, interval: float = 10.0) -> None:
        self.counters = counters
        self.clock = clock
        self.interval = interval
        self._next_log: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def refuse(self, reason: str, peer: str) -> None:
        """
        Count one refusal and log it unless this reason was logged recently.

        @param reason: short stable name of the rule that refused (one of
            L{REFUSALS}, or a L{udp_send_refusal}).
        @param peer: printable address of the peer refused.
        """
        self.counters.refusals[reason] += 1
        now = self.clock.seconds()
        if now < self._next_log.get(reason, float("-inf")):
            self._suppressed[reason] += 1
            return
        self._next_log[reason] = now + self.interval
        suppressed = self._suppressed.pop(reason, 0)
        self.log.warn(
            "Refused {peer}: {reason} ({suppressed} more refused since last report)",
            event="refused",
            peer=peer,
            reason=reason,
            suppressed=suppressed,
        )
