"""
Latency histograms for C{twisted-net bench}, with the C driver's buckets.
"""

from __future__ import annotations

__all__ = ["Histogram"]

_LINEAR_US = 2048
_SUB_BITS = 6


class Histogram:
    """
    Latencies in microsecond buckets up to 2 ms, then 64 buckets per power
    of two (under 1.6% error), like the C driver's.
    """

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.sum_us = 0.0
        self.max_us = 0.0

    def record(self, ns: int) -> None:
        us = ns // 1000
        if us < _LINEAR_US:
            index = us
        else:
            exponent = us.bit_length() - 1
            sub = (us >> (exponent - _SUB_BITS)) & ((1 << _SUB_BITS) - 1)
            index = _LINEAR_US + (exponent - 11) * (1 << _SUB_BITS) + sub
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1
        self.sum_us += ns / 1000
        if ns / 1000 > self.max_us:
            self.max_us = ns / 1000

    @staticmethod
    def _value(index: int) -> float:
        if index < _LINEAR_US:
            return index + 0.5
        relative = index - _LINEAR_US
        exponent = relative // (1 << _SUB_BITS) + 11
        sub = relative % (1 << _SUB_BITS)
        step = 1 << (exponent - _SUB_BITS)
        return (1 << exponent) + sub * step + step / 2

    def percentile(self, fraction: float) -> float:
        """
        The latency (microseconds) below which C{fraction} of them fall.
        """
        if not self.total:
            return 0.0
        rank = min(int(fraction * self.total), self.total - 1)
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen > rank:
                return self._value(index)
        return self.max_us

    def summary(self) -> dict[str, float]:
        return {
            "p50": self.percentile(0.50),
            "p90": self.percentile(0.90),
            "p99": self.percentile(0.99),
            "p999": self.percentile(0.999),
            "max": round(self.max_us, 1),
            "mean": round(self.sum_us / self.total, 1) if self.total else 0.0,
        }
