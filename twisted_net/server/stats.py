"""Transitional alias: see L{twisted_net.server.counters} and L{twisted_net.server.refusals}."""

from twisted_net.server.counters import LATENCY_BOUNDS, Counters
from twisted_net.server.refusals import RefusalLog

__all__ = ["LATENCY_BOUNDS", "Counters", "RefusalLog"]
