"""
Tests for L{twisted_net.server.session}: what every TCP session does whatever
its framing (delays, half-close, logs, counters), in memory.
"""

from __future__ import annotations

import pytest
from sessions import PEER, TOO_LONG, Session
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs

from twisted_net.config import ServerConfig
from twisted_net.logs import NamedLogger
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.session import GreetingProtocol

# delay -----------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_delay_uses_the_clock(framing: str) -> None:
    """
    With a delay, the reply leaves exactly C{delay} seconds after its
    message, without blocking anything.
    """
    session = Session(framing, ServerConfig(delay=1.0))
    assert session.send(b"Michael\n") == b""
    session.clock.advance(0.75)
    assert session.take() == b""
    session.clock.advance(0.25)
    assert session.take().startswith(b"Hello, Michael!")


def test_delay_keeps_order_on_one_connection() -> None:
    """
    Replies on one connection leave in message order, each C{delay} after
    its own message.
    """
    session = Session("line", ServerConfig(delay=1.0))
    session.send(b"a\n")
    session.clock.advance(0.5)
    session.send(b"b\nc\n")
    session.clock.advance(0.5)
    assert session.take() == b"Hello, a!\r\n"
    session.clock.advance(0.25)
    assert session.take() == b""
    session.clock.advance(0.25)
    assert session.take() == b"Hello, b!\r\nHello, c!\r\n"
    assert session.clock.getDelayedCalls() == []


def test_delay_connections_are_independent() -> None:
    """
    A connection with many delayed replies owed does not hold up another
    connection's reply.
    """
    clock = Clock()
    factory = GreetingFactory("line", ServerConfig(delay=1.0), clock=clock)
    busy = Session("line", factory=factory, clock=clock)
    other = Session(
        "line", factory=factory, clock=clock, peer=IPv4Address("TCP", "127.0.0.2", 40001)
    )
    for _ in range(4):
        busy.send(b"x\n" * 100)
        clock.advance(0.25)
    other.send(b"quick\n")
    clock.advance(1.0)
    assert other.take() == b"Hello, quick!\r\n"
    assert busy.take() == b"Hello, x!\r\n" * 400


def test_delay_exit_closes_after_owed_replies() -> None:
    """
    With a delay, C{exit} closes only after every earlier reply is sent.
    """
    session = Session("line", ServerConfig(delay=1.0))
    assert session.send(b"a\nexit\nb\n") == b""
    assert not session.closed
    session.clock.advance(1.0)
    assert session.take() == b"Hello, a!\r\n"
    assert session.closed


def test_delay_error_after_owed_replies() -> None:
    """
    With a delay, the max-message error is sent after earlier replies.
    """
    session = Session("seed", ServerConfig(delay=1.0, max_message=5))
    session.send(b"ok")
    session.send(b"123456")
    session.clock.advance(1.0)
    assert session.take() == b"Hello, ok!" + TOO_LONG
    assert session.closed


def test_connection_lost_cancels_owed_replies() -> None:
    """
    When the peer goes away, owed replies are dropped, no timer is left
    behind, and the connection is released.
    """
    session = Session("line", ServerConfig(delay=1.0))
    session.send(b"a\n")
    assert session.clock.getDelayedCalls() != []
    session.protocol.connectionLost()
    assert session.clock.getDelayedCalls() == []
    assert session.factory.sessions == set()
    assert session.factory.counters.connections_open == 0


# half-close --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "data", "expected"),
    [
        ("seed", b"Michael", b"Hello, Michael!"),
        ("line", b"a\nb", b"Hello, a!\r\nHello, b!\r\n"),
        ("line", b"a\r\nb\r", b"Hello, a!\r\nHello, b!\r\n"),
    ],
)
def test_half_close_answers_everything_then_closes(
    framing: str, data: bytes, expected: bytes
) -> None:
    """
    When the peer shuts down its sending side, everything it sent is
    answered (a last unterminated line too), then the connection closes.
    """
    session = Session(framing)
    written = session.send(data)
    assert not session.closed
    session.protocol.readConnectionLost()
    assert written + session.take() == expected
    assert session.closed


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_half_close_waits_for_delayed_replies(framing: str) -> None:
    """
    A half-close with delayed replies owed closes only after they are sent.
    """
    session = Session(framing, ServerConfig(delay=1.0))
    session.send(b"a\n")
    session.protocol.readConnectionLost()
    assert not session.closed
    session.clock.advance(1.0)
    assert session.take() == (b"Hello, a!\n" if framing == "seed" else b"Hello, a!\r\n")
    assert session.closed


# bookkeeping and logs ----------------------------------------------------------


def test_connection_opened_and_closed_are_logged() -> None:
    """
    Opening and closing a connection log the tutorial's lines with the
    peer's C{HOST:PORT}.
    """
    with capturedLogs() as events:
        session = Session("seed")
        session.protocol.connectionLost()
    opened = [e for e in events if e.get("event") == "connection_opened"]
    closed = [e for e in events if e.get("event") == "connection_closed"]
    assert [e["peer"] for e in opened] == ["127.0.0.1:40000"]
    assert [e["peer"] for e in closed] == ["127.0.0.1:40000"]
    assert opened[0]["log_format"] == "Accept new connection from {peer}..."
    assert closed[0]["log_format"] == "Connection from {peer} closed."


def test_the_server_prepares_its_connection_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    The factory's two connection lines take L{PreparedEvent}'s fast path,
    not C{Logger.emit}, and still reach the log with the peer's address.
    """
    emits: list[object] = []
    monkeypatch.setattr(NamedLogger, "emit", lambda self, *args, **kwargs: emits.append(args))
    with capturedLogs() as events:
        session = Session("seed")
        session.protocol.connectionLost()
    assert [(e["event"], e["peer"]) for e in events] == [
        ("connection_opened", "127.0.0.1:40000"),
        ("connection_closed", "127.0.0.1:40000"),
    ]
    assert emits == []


def test_ipv6_peer_is_logged_in_brackets() -> None:
    """
    An IPv6 peer is logged as C{[HOST]:PORT}.
    """
    with capturedLogs() as events:
        Session("line", peer=IPv6Address("TCP", "::1", 40000))
    assert [e["peer"] for e in events if e.get("event") == "connection_opened"] == ["[::1]:40000"]


@pytest.mark.parametrize("log_messages", [False, True])
def test_messages_logged_only_when_asked(log_messages: bool) -> None:
    """
    Per-message log events appear only with C{log_messages}.
    """
    with capturedLogs() as events:
        Session("line", ServerConfig(log_messages=log_messages)).send(b"a\nb\n")
    messages = [e["message"] for e in events if e.get("event") == "message"]
    assert messages == ([b"a", b"b"] if log_messages else [])


def test_counters() -> None:
    """
    The factory counts connections, answered messages and bytes.
    """
    session = Session("line")
    session.send(b"a\nb\n")
    counters = session.factory.counters
    assert counters.connections_open == 1
    assert counters.connections_total == 1
    assert counters.messages_answered == 2
    assert counters.bytes_in == 4
    assert counters.bytes_out == len(b"Welcome!\r\nHello, a!\r\nHello, b!\r\n")


# The peer, from any transport ----------------------------------------------------


class WrappingTransport(StringTransport):
    """
    A transport that reports another peer than the socket's, as the PROXY
    header and TLS wrappers do.
    """

    def getPeer(self) -> IPv4Address:
        return IPv4Address("TCP", "203.0.113.9", 1234)


def test_the_peer_is_what_the_transport_says() -> None:
    """
    The session asks its transport's C{getPeer}, whatever the transport.
    """
    factory = GreetingFactory("seed", ServerConfig(max_per_peer=0), clock=Clock())
    protocol = factory.buildProtocol(PEER)
    assert isinstance(protocol, GreetingProtocol)
    protocol.makeConnection(WrappingTransport(peerAddress=PEER))
    assert protocol.peer == "203.0.113.9:1234"
    assert protocol.peer_host == "203.0.113.9"


def test_a_unix_peer_is_described() -> None:
    session = Session("seed", peer=UNIXAddress(b"/tmp/sock"))  # type: ignore[arg-type]
    assert session.protocol.peer == "/tmp/sock"
    assert session.protocol.peer_host == "unix"


def test_the_greeting_is_an_ordinary_write() -> None:
    """
    The greeting leaves through the transport's C{write}, before the
    session registers as its producer.
    """
    calls: list[str] = []

    class Recording(StringTransport):
        def write(self, data: bytes) -> None:
            calls.append("write")
            super().write(data)

        def registerProducer(self, producer: object, streaming: bool) -> None:
            calls.append("registerProducer")
            super().registerProducer(producer, streaming)

    factory = GreetingFactory("line", clock=Clock())
    protocol = factory.buildProtocol(PEER)
    assert protocol is not None
    transport = Recording(peerAddress=PEER)
    protocol.makeConnection(transport)
    assert transport.value() == b"Welcome!\r\n"
    assert calls == ["write", "registerProducer"]


# The answering policy ------------------------------------------------------------


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_the_policy_answers_each_message_with_its_ending(framing: str) -> None:
    session = Session(framing)
    session.protocol.messagesReceived([(b"a", b"\n"), (b"b", b"\r\n"), (b"c", b"")])
    assert session.take() == b"Hello, a!\nHello, b!\r\nHello, c!"
    assert session.factory.counters.messages_answered == 3


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_the_policy_stops_at_exit_and_at_a_long_message(framing: str) -> None:
    session = Session(framing, ServerConfig(max_message=5))
    session.protocol.messagesReceived([(b"a", b"\n"), (b"exit", b""), (b"b", b"\n")])
    assert session.take() == b"Hello, a!\n"
    assert session.closed
    session = Session(framing, ServerConfig(max_message=5))
    session.protocol.messagesReceived([(b"a", b"\n"), (b"abcdef", b"\n"), (b"b", b"\n")])
    assert session.take() == b"Hello, a!\n" + TOO_LONG
    assert session.closed
    assert session.factory.counters.refusals == {"max-message": 1}


def test_the_policy_logs_before_it_answers() -> None:
    session = Session("line", ServerConfig(log_messages=True, max_message=3))
    with capturedLogs() as events:
        session.protocol.messagesReceived([(b"ab", b"\r\n"), (b"long", b"\r\n")])
    assert [e["message"] for e in events if e.get("event") == "message"] == [b"ab", b"long"]


def test_a_session_without_a_framing_says_so() -> None:
    protocol = GreetingProtocol()
    with pytest.raises(NotImplementedError, match="no framing"):
        protocol.cut(b"M")
