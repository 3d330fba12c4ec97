"""
The knobs shared by the TCP and UDP sides, in one immutable value.

L{twisted_net.tap.Options} parses the command line into a L{ServerConfig};
programs that embed the protocols build one directly.  Every limit has a
default that is safe on a public port; C{0} switches a limit off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ServerConfig"]


@dataclass(frozen=True)
class ServerConfig:
    """
    Behaviour and limits of a greeting server.

    @ivar delay: seconds to wait before each reply (the tutorial's
        C{time.sleep(1)}, done with C{callLater}); C{0} replies at once.
    @ivar max_message: longest message, in bytes, that is answered.
    @ivar idle_timeout: seconds a TCP connection may stay silent.
    @ivar message_timeout: seconds a partial C{line} message may take to
        complete (stops clients that drip one byte at a time).
    @ivar write_timeout: seconds a TCP connection may stay blocked on a
        peer that does not read its replies, or spend flushing on close.
    @ivar max_connections: TCP connections open at once, over all peers.
    @ivar max_per_peer: TCP connections open at once from one host.
    @ivar queue_limit: bytes of delayed replies a TCP connection may have
        waiting before the server stops reading from it.
    @ivar udp_rate: datagrams per second answered for one source host.
    @ivar udp_burst: how many datagrams one source may send at once.
    @ivar log_messages: log every message (off: it costs throughput).
    @ivar log_connections: log each TCP connection's opening and closing
        (info events); C{twist net} turns it off when its C{--log-level}
        would drop them anyway, so that they cost nothing per connection.
    @ivar shutdown_timeout: seconds a stop waits for owed replies before it
        aborts the remaining connections.
    """

    delay: float = 0.0
    max_message: int = 4096
    idle_timeout: float = 300.0
    message_timeout: float = 30.0
    write_timeout: float = 30.0
    max_connections: int = 10000
    max_per_peer: int = 100
    queue_limit: int = 65536
    udp_rate: float = 200.0
    udp_burst: int = 400
    log_messages: bool = False
    log_connections: bool = True
    shutdown_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in _SECONDS_OR_RATES:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"ServerConfig.{name} must be a finite number >= 0, not {value!r}")
        for name, minimum in _COUNTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"ServerConfig.{name} must be an integer >= {minimum}, not {value!r}"
                )


_SECONDS_OR_RATES = (
    "delay",
    "idle_timeout",
    "message_timeout",
    "write_timeout",
    "udp_rate",
    "shutdown_timeout",
)
_COUNTS = {
    "max_message": 1,
    "udp_burst": 1,
    "max_connections": 0,
    "max_per_peer": 0,
    "queue_limit": 0,
}
