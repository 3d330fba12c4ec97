"""
Counters that watch the flow from the side.

The protocols only ever add to plain integer attributes here, so counting
costs next to nothing on the per-message path; exporters (such as
L{twisted_net.server.metrics}) read them when asked.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from typing import Any, Final

__all__ = ["LATENCY_BOUNDS", "Counters"]

LATENCY_BOUNDS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the reply latency histogram's buckets."""


class Counters:
    """
    Running totals of one server (TCP and UDP sides together).

    @ivar refusals: how many times each refusal reason occurred, keyed by a
        short stable name such as C{"max-per-peer"} or C{"udp-rate"}.
    """

    def __init__(self) -> None:
        self.connections_open = 0
        self.connections_total = 0
        self.messages_answered = 0
        self.datagrams_answered = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.udp_send_errors = 0
        self.health_checks = 0
        self.refusals: Counter[str] = Counter()
        self.latency_buckets = [0] * (len(LATENCY_BOUNDS) + 1)
        self.latency_sum = 0.0

    def observe_latency(self, seconds: float) -> None:
        """
        Count one reply latency in its histogram bucket (the last bucket is
        above every bound).  Called for delayed replies only, once per batch
        of replies written together, so it stays off the immediate path.
        """
        self.latency_buckets[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.latency_sum += seconds

    def snapshot(self) -> dict[str, Any]:
        """
        All counters as a plain dictionary (for logs, tests and exporters).
        """
        values: dict[str, Any] = {
            name: value for name, value in vars(self).items() if isinstance(value, int)
        }
        values["refusals"] = dict(self.refusals)
        return values
