"""
The batched log output (L{twisted_net.logoutput}) and the flattened events
of L{twisted_net.logs.NamedLogger}: the same text and JSON as Twisted's own
observers, byte for byte, written one batch per reactor iteration, at once
where waiting would hide a line.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import (
    LogEvent,
    LogLevel,
    LogPublisher,
    eventAsJSON,
    formatEvent,
    formatEventAsClassicLogText,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.python.failure import Failure

from twisted_net.logoutput import (
    BATCH_LIMIT,
    BUFFERED,
    BufferedLogObserver,
    bufferedJSONFileLogObserver,
    bufferedTextFileLogObserver,
    formatJSON,
    formatText,
)
from twisted_net.logs import NamedLogger, PreparedEvent
from twisted_net.tap import Options, batch_log_output


class Source:
    """A source object, as a factory or protocol would be."""


FORMATS = [
    "Accept new connection from {peer}...",
    "Refused {peer}: {reason} ({suppressed} more refused since last report)",
    "Received from {peer}: {message!r}",
    "{peer} and {peer} again",
    "Overflowed {count} times in {interval:g} s",
    "{peer!s} as text, {peer!r} as repr",
    "{peer}",
    "no fields at all",
    "{source.__class__.__name__} attribute",
]


class Name(str):
    """A subclass of C{str}: JSON writes its value, text its C{__format__}."""


VALUES = st.one_of(
    st.text(),
    st.builds(Name, st.text()),
    st.builds(Source),
    st.integers(),
    st.binary(max_size=20),
    st.floats(allow_nan=False),
    st.none(),
    st.lists(st.integers(), max_size=3),
)


def emitted(format: str, fields: dict[str, Any], level: LogLevel = LogLevel.info) -> LogEvent:
    """The event C{NamedLogger} emits for C{format} and C{fields}."""
    events: list[LogEvent] = []
    logger = NamedLogger("twisted_net.test", Source(), LogPublisher(events.append))
    logger.emit(level, format, **fields)
    (event,) = events
    return event


def as_stock(event: LogEvent) -> LogEvent:
    """The event Twisted's C{Logger.emit} would have built: nothing flattened."""
    stock = dict(event)
    stock.pop("log_flattened", None)
    return stock


def outcome(format: Any, event: LogEvent) -> object:
    """What C{format(event)} gives, or the kind of exception it raises."""
    try:
        return format(copied(event))
    except Exception as error:
        return type(error)


def json_record(event: LogEvent) -> str:
    """C{jsonFileLogObserver}'s record for C{event}."""
    return f"\x1e{eventAsJSON(event)}\n"


def copied(event: LogEvent) -> LogEvent:
    """A copy that Twisted's JSON encoder may flatten without touching C{event}."""
    copy = dict(event)
    if "log_flattened" in copy:
        copy["log_flattened"] = dict(copy["log_flattened"])
    return copy


@given(
    st.sampled_from(FORMATS),
    st.fixed_dictionaries(
        {},
        optional={
            "peer": VALUES,
            "reason": VALUES,
            "suppressed": VALUES,
            "message": VALUES,
            "count": VALUES,
            "interval": VALUES,
        },
    ),
)
def test_same_text_and_json_as_twisted(format: str, fields: dict[str, Any]) -> None:
    """
    Whatever the format and the values, an event of C{NamedLogger} reads the
    same as Twisted's own event for it, through Twisted's formatters and
    through the fast ones, in text and in JSON.
    """
    event = emitted(format, fields)
    stock = as_stock(event)
    expected_text = outcome(formatEventAsClassicLogText, stock)
    assert outcome(formatEventAsClassicLogText, event) == expected_text
    assert outcome(formatText, event) == expected_text
    expected_json = outcome(json_record, stock)
    assert outcome(json_record, event) == expected_json
    assert outcome(formatJSON, event) == expected_json


def test_plain_fields_arrive_flattened() -> None:
    """
    A format of plain fields is flattened as C{eventAsJSON} would flatten it;
    one with a format spec is left to Twisted, whose formatting of a
    flattened event would drop the spec.
    """
    event = emitted("Accept new connection from {peer}...", {"peer": "127.0.0.1:5"})
    assert event["log_flattened"] == {"peer!s:": "127.0.0.1:5", "peer!:": "127.0.0.1:5"}
    assert "log_flattened" not in emitted("{interval:g} s", {"interval": 0.5})


def test_failures_and_foreign_events_are_formatted_by_twisted() -> None:
    """
    Events the fast path does not know (a failure, a C{log_system}, a legacy
    event) still come out as Twisted writes them.
    """
    failure = Failure(ZeroDivisionError("division by zero"))
    events = [
        emitted("Deadline check failed for {peer}", {"peer": "p", "log_failure": failure}),
        {"log_format": "{log_text}", "log_text": "legacy", "log_system": "-", "log_time": 5.0},
        {"log_format": "no time", "log_namespace": "x", "log_level": LogLevel.warn},
    ]
    for event in events:
        assert formatText(copied(event)) == formatEventAsClassicLogText(copied(event))
        assert formatJSON(copied(event)) == f"\x1e{eventAsJSON(copied(event))}\n"


def observing(out: io.StringIO, reactor: MemoryReactorClock) -> BufferedLogObserver:
    return BufferedLogObserver(out, formatText, reactor)


def event_at(second: float) -> LogEvent:
    event = emitted("Accept new connection from {peer}...", {"peer": "127.0.0.1:5"})
    event["log_time"] = second
    return event


def test_one_write_per_reactor_iteration() -> None:
    """
    While the reactor runs, lines wait for the end of the iteration, then
    leave together, in the order they were logged.
    """
    out, reactor = io.StringIO(), MemoryReactorClock()
    reactor.running = True
    observer = observing(out, reactor)
    observer(event_at(1.0))
    observer(event_at(2.0))
    assert out.getvalue() == ""
    reactor.advance(0)
    assert out.getvalue() == formatText(event_at(1.0)) + formatText(event_at(2.0))  # type: ignore[operator]


def test_at_once_when_waiting_would_hide_a_line() -> None:
    """
    Lines are written at once when the reactor is not running (start-up,
    after shutdown), on a terminal, from another thread, and when
    L{BATCH_LIMIT} are waiting; and what waits is written at shutdown.
    """
    out, reactor = io.StringIO(), MemoryReactorClock()
    observing(out, reactor)(event_at(1.0))
    assert out.getvalue() == formatText(event_at(1.0))

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    reactor.running = True
    observing(terminal, reactor)(event_at(1.0))
    assert terminal.getvalue() == formatText(event_at(1.0))

    out = io.StringIO()
    observer = observing(out, reactor)
    thread = threading.Thread(target=observer, args=(event_at(3.0),))
    thread.start()
    thread.join()
    assert out.getvalue() == formatText(event_at(3.0))

    out = io.StringIO()
    observer = observing(out, reactor)
    for _ in range(BATCH_LIMIT):
        observer(event_at(4.0))
    assert out.getvalue().count("\n") == BATCH_LIMIT

    out = io.StringIO()
    observer = observing(out, reactor)
    observer(event_at(5.0))
    assert out.getvalue() == ""
    for trigger, args, kwargs in reactor.triggers["after"]["shutdown"]:
        trigger(*args, **kwargs)
    assert out.getvalue() == formatText(event_at(5.0))


def test_binary_files_get_utf8() -> None:
    """
    As with Twisted's file observer, a binary file gets UTF-8 bytes.
    """
    out, reactor = io.BytesIO(), MemoryReactorClock()
    BufferedLogObserver(out, formatText, reactor)(emitted("{peer}", {"peer": "café"}))  # type: ignore[arg-type]
    assert out.getvalue().decode("utf-8").endswith("] café\n")


def test_json_records_read_back() -> None:
    """
    The batched JSON output is a sequence of Twisted's JSON records.
    """
    out, reactor = io.StringIO(), MemoryReactorClock()
    observer = BufferedLogObserver(out, formatJSON, reactor)
    observer(event_at(7.0))
    record = json.loads(out.getvalue().strip("\x1e\n"))
    assert (record["log_namespace"], record["peer"], record["log_time"]) == (
        "twisted_net.test",
        "127.0.0.1:5",
        7.0,
    )


class FakeTwist(usage.Options):
    """Options that do what C{twist}'s do: install a reactor by name."""

    def installReactor(self, name: str) -> None:
        """Nothing to install in a test."""


def test_batch_log_output_swaps_only_twisteds_stock_factories() -> None:
    """
    Under C{twist}, the stock text and JSON factories become the batched
    ones; another factory, or options of another program, stay as they are.
    """
    for stock, batched in [
        (textFileLogObserver, bufferedTextFileLogObserver),
        (jsonFileLogObserver, bufferedJSONFileLogObserver),
    ]:
        options = Options()
        options.parent = FakeTwist()
        options.parent["reactorName"] = "netepoll"
        options.parent["fileLogObserverFactory"] = stock
        assert batch_log_output(options)
        assert options.parent["fileLogObserverFactory"] is batched is BUFFERED[stock]

    def custom(out: Any) -> Any:
        return textFileLogObserver(out)

    options = Options()
    options.parent = FakeTwist()
    options.parent["reactorName"] = "netepoll"
    options.parent["fileLogObserverFactory"] = custom
    assert not batch_log_output(options)
    assert options.parent["fileLogObserverFactory"] is custom
    assert not batch_log_output(Options())


def test_a_file_that_fails_is_reported_not_retried_every_iteration() -> None:
    """
    When a batched write fails, the next event is written at once and its
    failure raised to the publisher, which reports it to the other observers
    (as for Twisted's own file observer), instead of the error being logged
    to this observer every iteration; once the file takes lines again, they
    are written.
    """

    class Full(io.StringIO):
        full = True

        def write(self, text: str) -> int:
            if self.full:
                raise OSError("No space left on device")
            return super().write(text)

    reactor = MemoryReactorClock()
    reactor.running = True
    out = Full()
    observer = observing(out, reactor)
    seen: list[LogEvent] = []
    publisher = LogPublisher(observer, seen.append)
    publisher(event_at(1.0))
    reactor.advance(0)
    publisher(event_at(2.0))
    publisher(event_at(3.0))
    reactor.advance(0)
    dropped = [e for e in seen if "Temporarily disabling observer" in formatEvent(e)]
    assert len(dropped) == 2
    assert reactor.getDelayedCalls() == []
    out.full = False
    publisher(event_at(4.0))
    assert out.getvalue() == formatText(event_at(4.0))


def test_a_line_logged_during_a_write_follows_it() -> None:
    """
    A line logged while a batch is being written (Twisted logs from its
    signal handlers, which interrupt the reactor's thread anywhere) is
    written right after that batch, not lost, not written in the middle.
    """
    reactor = MemoryReactorClock()
    observer: BufferedLogObserver

    class Interrupted(io.StringIO):
        interrupted = False

        def write(self, text: str) -> int:
            if not self.interrupted:
                self.interrupted = True
                observer(event_at(9.0))  # as a signal handler would, mid-write
            return super().write(text)

    out = Interrupted()
    observer = observing(out, reactor)
    observer(event_at(8.0))
    assert out.getvalue() == formatText(event_at(8.0)) + formatText(event_at(9.0))  # type: ignore[operator]


def test_formats_made_on_the_fly_do_not_grow_the_caches() -> None:
    """
    A program logging formats it builds each time (f-strings) gets the same
    output, and the caches of formats stop growing at their limits.
    """
    from twisted_net import logoutput, logs

    recipes, fast_formats = dict(logs._recipes), dict(logoutput._fast_formats)
    try:
        for number in range(logs.RECIPES_KEPT + 50):
            event = emitted(f"request {number} from {{peer}}", {"peer": "p"})
            assert formatText(copied(event)) == formatEventAsClassicLogText(as_stock(event))
            assert formatJSON(copied(event)) == json_record(copied(as_stock(event)))
        assert len(logs._recipes) <= logs.RECIPES_KEPT
        assert len(logoutput._fast_formats) <= logoutput.FORMATS_KEPT
    finally:
        logs._recipes.clear()
        logs._recipes.update(recipes)
        logoutput._fast_formats.clear()
        logoutput._fast_formats.update(fast_formats)


@given(st.sampled_from(FORMATS), VALUES)
def test_a_prepared_event_is_the_event_emit_builds(format: str, value: Any) -> None:
    """
    L{PreparedEvent} hands observers the event C{NamedLogger.emit} builds
    for the same format, name and field (its time aside), by its fast path
    for a plain text field and through C{emit} for anything else.
    """
    events: list[LogEvent] = []
    logger = NamedLogger("twisted_net.test", Source(), LogPublisher(events.append))
    PreparedEvent(logger, LogLevel.info, format, event="connection_opened", field="peer")(value)
    logger.emit(LogLevel.info, format, event="connection_opened", peer=value)
    prepared, emitted_ = events
    assert prepared.pop("log_time") <= emitted_.pop("log_time")
    assert list(prepared.items()) == list(emitted_.items())


def test_json_records_without_the_c_encoder(monkeypatch: Any) -> None:
    """
    Where this Python has no C encoder, or one that writes other text, the
    JSON records come from C{json}'s public encoder, the same text.
    """
    from twisted_net import logjson

    event = emitted("Accept new connection from {peer}...", {"peer": "127.0.0.1:5"})
    expected = json_record(as_stock(event))
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert f"\x1e{logjson._c_encoding(logjson._ENCODER)(event)}\n" == expected
    monkeypatch.setattr(json.encoder, "c_make_encoder", lambda *args: lambda value, level: ["x"])
    assert logjson._c_encoding(logjson._ENCODER) == logjson._ENCODER.encode
