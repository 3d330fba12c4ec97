"""
The log output of C{twist net}: Twisted's text and JSON lines, written in
batches.

Twisted's C{FileLogObserver} formats each event from scratch (the time
through C{strftime}, the message through C{string.Formatter}, JSON through
the C{default} hook for every logger, level and source) and flushes the file
after every line: at the default log level that was a third of the server's
throughput under connection churn.  L{BufferedLogObserver} writes what one
reactor iteration logged in one write, at once on a terminal and when the
reactor is not running (start-up, shutdown), so nothing waits.  L{formatText}
and L{formatJSON} are Twisted's formats, with a fast path for events whose
format has plain fields (those L{NamedLogger<twisted_net.logs.NamedLogger>}
emits already flattened), checked against Twisted's own output for each
format before it is used.  See docs/PERFORMANCE.md, section "Log events at
the default level".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from math import floor
from string import Formatter
from typing import IO, Any

from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    eventAsJSON,
    formatEventAsClassicLogText,
    formatTime,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python.compat import ioType
from zope.interface import implementer

from twisted_net.logjson import NamedConstant, event_json
from twisted_net.logs import Recipe, flattening

__all__ = [
    "BufferedLogObserver",
    "bufferedJSONFileLogObserver",
    "bufferedTextFileLogObserver",
    "formatJSON",
    "formatText",
]

BATCH_LIMIT = 256
"""Lines buffered at most before a write, whatever the iteration."""

FORMATS_KEPT = 1000
"""Formats given a fast path, at most: a program that logs formats it makes
on the fly (f-strings) gets Twisted's formatting past that many, not a
cache that grows without end."""

Formatting = Callable[[LogEvent], "str | None"]


@implementer(ILogObserver)
class BufferedLogObserver:
    """
    Write formatted events to a file, one write per reactor iteration.

    Lines are written at once when the file is a terminal, when the reactor
    is not running, and from threads other than the reactor's; otherwise
    they are kept until the end of the iteration (a C{callLater(0)}), or
    until L{BATCH_LIMIT} are waiting, and always before the reactor stops.
    """

    def __init__(self, outFile: IO[Any], formatEvent: Formatting, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as installed

            reactor = installed
        self._file = outFile
        self._encoding = None if ioType(outFile) is str else "utf-8"
        self._format = formatEvent
        self._reactor = reactor
        self._waiting: list[str] = []
        # Reentrant: Twisted logs from its signal handlers, which run in the
        # reactor's thread, perhaps in the middle of a flush.
        self._lock = threading.RLock()
        self._flushing = False
        self._flush_scheduled = False
        self._broken: Exception | None = None
        self._thread = threading.get_ident()
        isatty = getattr(outFile, "isatty", None)
        self._at_once = bool(isatty and isatty())
        if IReactorTime.providedBy(reactor) and IReactorCore.providedBy(reactor):
            reactor.addSystemEventTrigger("after", "shutdown", self.flush)
        else:
            self._at_once = True

    def __call__(self, event: LogEvent) -> None:
        text = self._format(event)
        if not text:
            return
        with self._lock:
            waiting = self._waiting
            waiting.append(text)  # the list in use: flush() takes it whole
        if (
            self._at_once
            or self._broken is not None
            or not self._reactor.running
            or len(waiting) >= BATCH_LIMIT
            or threading.get_ident() != self._thread
        ):
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._reactor.callLater(0, self._flush_later)

    def _flush_later(self) -> None:
        self._flush_scheduled = False
        try:
            self.flush()
        except Exception as error:
            # Raised here, the reactor would log it to this observer, whose
            # next flush would fail again, every iteration.  The next event
            # is written at once instead, and raises to the publisher, which
            # reports it to the other observers, as for Twisted's own file
            # observer whose write fails.
            self._broken = error

    def flush(self) -> None:
        """
        Write every line waiting, in one write, and flush the file.
        """
        with self._lock:
            if self._flushing or not self._waiting:
                # Re-entered from a signal handler: the flush under way
                # writes its line too, after the write in progress.
                return
            self._flushing = True
            try:
                while self._waiting:
                    waiting, self._waiting = self._waiting, []
                    text = "".join(waiting)
                    if self._encoding is None:
                        self._file.write(text)
                    else:
                        self._file.write(text.encode(self._encoding))
                self._file.flush()
                self._broken = None
            finally:
                self._flushing = False


# Twisted's formats, with a fast path for plain-field formats ----------------


class _Fast:
    """What a plain-field format renders to: literal text and flattened keys."""

    def __init__(self, recipe: Recipe, pieces: tuple[tuple[str, str | None], ...]) -> None:
        self.keys = frozenset(key for key, _name, _how in recipe)
        self.pieces = pieces


_second_text: tuple[int | None, str] = (None, "")
_SYSTEMS: dict[tuple[str, LogLevel], str] = {}
_fast_formats: dict[str, _Fast | None] = {}


def _time_text(when: float) -> str:
    """C{formatTime(when)}, made once per second (its format shows seconds)."""
    global _second_text
    second = floor(when)
    cached = _second_text
    if cached[0] == second:
        return cached[1]
    text = str(formatTime(when))
    _second_text = (second, text)
    return text


def _pieces(format: str) -> tuple[tuple[str, str | None], ...]:
    """(literal, key into log_flattened) in order, as Twisted's flatFormat reads them."""
    seen: dict[str, int] = {}
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in Formatter().parse(format):
        key = None
        if name is not None:
            key = f"{name}!{conversion or 's'}:{spec or ''}"
            count = seen[key] = seen.get(key, 0) + 1
            if count != 1:
                key = f"{key}/{count}"
        pieces.append((literal, key))
    return tuple(pieces)


def _fast(format: str) -> _Fast | None:
    """
    The fast path for C{format}, if it has one that gives Twisted's text.
    """
    try:
        return _fast_formats[format]
    except KeyError:
        if len(_fast_formats) >= FORMATS_KEPT:
            return None  # Twisted's formatting, as without this module
    from twisted_net.logs import _flattened

    recipe = flattening(format)
    fast = None
    if recipe is not None:
        candidate = _Fast(recipe, _pieces(format))
        fields = {name: f"<{name}>" for _key, name, _how in recipe}
        sample: LogEvent = dict(fields)
        sample.update(
            log_level=LogLevel.info,
            log_namespace="sample",
            log_format=format,
            log_time=0.0,
        )
        flat = _flattened(recipe, sample)
        if flat is not None:
            sample["log_flattened"] = flat
            try:
                agrees = _render(candidate, sample) == formatEventAsClassicLogText(dict(sample))
            except (KeyError, AttributeError):
                agrees = False
            if agrees:
                fast = candidate
    _fast_formats[format] = fast
    return fast


def _render(fast: _Fast, event: LogEvent) -> str | None:
    flat = event["log_flattened"]
    message = "".join(
        literal if key is None else literal + str(flat[key]) for literal, key in fast.pieces
    )
    if not message:
        return None
    level = event["log_level"]
    namespace = event["log_namespace"]
    system = _SYSTEMS.get((namespace, level))
    if system is None:
        system = _SYSTEMS[(namespace, level)] = f"[{namespace}#{level.name}] "
    return f"{_time_text(event['log_time'])} {system}{message}".replace("\n", "\n\t") + "\n"


def _fast_for(event: LogEvent) -> _Fast | None:
    if "log_failure" in event or "log_system" in event:
        return None
    flat = event.get("log_flattened")
    format = event.get("log_format")
    if flat is None or type(format) is not str or event.get("log_time") is None:
        return None
    fast = _fast_formats[format] if format in _fast_formats else _fast(format)
    if fast is None or not fast.keys <= flat.keys():
        return None
    return fast


def formatText(event: LogEvent) -> str | None:
    """
    C{formatEventAsClassicLogText(event)}: the same text, made faster for
    an event already flattened whose format has plain fields.
    """
    fast = _fast_for(event)
    if fast is not None and type(event.get("log_level")) is NamedConstant:
        try:
            return _render(fast, event)
        except (KeyError, AttributeError):
            pass
    return formatEventAsClassicLogText(event, formatTime=_time_text_or_default)


def _time_text_or_default(when: float | None) -> str:
    return "-" if when is None else _time_text(when)


def formatJSON(event: LogEvent) -> str | None:
    """
    C{jsonFileLogObserver}'s record for C{event}: the same text, made faster
    for an event already flattened whose format has plain fields
    (L{twisted_net.logjson.event_json}).
    """
    if _fast_for(event) is not None:
        try:
            return f"\x1e{event_json(event)}\n"
        except (TypeError, ValueError, RecursionError):
            pass
    return f"\x1e{eventAsJSON(event)}\n"


def bufferedTextFileLogObserver(outFile: IO[Any]) -> BufferedLogObserver:
    """
    C{textFileLogObserver}'s output (the default time format), in batches.
    """
    return BufferedLogObserver(outFile, formatText)


def bufferedJSONFileLogObserver(outFile: IO[Any]) -> BufferedLogObserver:
    """
    C{jsonFileLogObserver}'s output (the default record separator), in batches.
    """
    return BufferedLogObserver(outFile, formatJSON)


BUFFERED: dict[Callable[..., FileLogObserver], Callable[[IO[Any]], BufferedLogObserver]] = {
    textFileLogObserver: bufferedTextFileLogObserver,
    jsonFileLogObserver: bufferedJSONFileLogObserver,
}
"""Twisted's file observer factories, and the batched one writing the same."""
