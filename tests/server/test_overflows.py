"""
Tests for L{twisted_net.server.overflows}: the kernel's listen-queue
overflows, logged when they rise, at most once per interval.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs

from twisted_net.server.overflows import OVERFLOW_INTERVAL, ListenOverflowWatch


class Readings:
    """
    The kernel's count, as a test sets it.
    """

    def __init__(self, value: int | None) -> None:
        self.value = value

    def __call__(self) -> int | None:
        return self.value


def test_logs_a_rise_once_per_interval() -> None:
    clock = Clock()
    kernel = Readings(100)
    watch = ListenOverflowWatch(clock, kernel)
    with capturedLogs() as events:
        watch.startService()
        kernel.value = 130
        clock.advance(OVERFLOW_INTERVAL - 1)
        assert events == []  # not read before the interval is up
        clock.advance(1)
        clock.advance(OVERFLOW_INTERVAL)  # no rise: no line
        kernel.value = 131
        clock.advance(OVERFLOW_INTERVAL)
        watch.stopService()
        kernel.value = 200
        clock.advance(OVERFLOW_INTERVAL)  # stopped: not read any more
    logged = [(e["event"], e["count"], e["total"], e["log_level"]) for e in events]
    assert logged == [
        ("listen_overflows", 30, 130, LogLevel.warn),
        ("listen_overflows", 1, 131, LogLevel.warn),
    ]
    assert events[0]["log_namespace"] == "twisted_net.service"


def test_unknown_readings_log_nothing() -> None:
    """
    Off Linux (no reading at start) nothing is scheduled; a reading that
    goes missing later is skipped.
    """
    clock = Clock()
    with capturedLogs() as events:
        watch = ListenOverflowWatch(clock, Readings(None))
        watch.startService()
        assert clock.getDelayedCalls() == []
        watch.stopService()
        kernel = Readings(5)
        other = ListenOverflowWatch(clock, kernel)
        other.startService()
        kernel.value = None
        clock.advance(OVERFLOW_INTERVAL)
        kernel.value = 9
        clock.advance(OVERFLOW_INTERVAL)
        other.stopService()
    assert [(e["count"], e["total"]) for e in events] == [(4, 9)]
