"""
A download progress bar for a terminal, redrawn in place on one line.
"""

from __future__ import annotations

from typing import Final, TextIO

from twisted.internet.interfaces import IReactorTime

__all__ = ["LARGE_BODY", "ProgressBar"]

LARGE_BODY: Final = 1 << 20
"""Bodies from this size on get a progress bar (smaller ones finish at once)."""

_WIDTH: Final = 30


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class ProgressBar:
    """
    Show how much of a body has arrived, at most C{rate} times a second,
    once it is (or is announced to be) at least C{threshold} bytes.

    Call L{update} as bytes arrive and L{finish} at the end (it ends the
    line when a bar was drawn).
    """

    def __init__(
        self,
        stream: TextIO,
        clock: IReactorTime,
        threshold: int = LARGE_BODY,
        rate: float = 10.0,
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.threshold = threshold
        self.interval = 1.0 / rate
        self.drawn = False
        self._width = 0
        self._last_draw = float("-inf")
        self._started = clock.seconds()

    def update(self, received: int, total: int | None) -> None:
        """
        C{received} bytes so far, of C{total} (C{None}: unknown).
        """
        if received < self.threshold and (total is None or total < self.threshold):
            return
        now = self.clock.seconds()
        if now - self._last_draw < self.interval and (total is None or received < total):
            return
        self._last_draw = now
        text = self.render(received, total, now - self._started)
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()
        self.drawn = True

    def render(self, received: int, total: int | None, elapsed: float) -> str:
        """
        One line of progress, without a line ending.
        """
        speed = f"{_size(int(received / elapsed))}/s" if elapsed > 0 else ""
        if total:
            done = min(received / total, 1.0)
            filled = int(done * _WIDTH)
            bar = "#" * filled + "-" * (_WIDTH - filled)
            return f"[{bar}] {done:4.0%} {_size(received)} of {_size(total)} {speed}"
        return f"{_size(received)} {speed}"

    def finish(self) -> None:
        """
        End the bar's line, if one was drawn.
        """
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
