"""
Tests for L{twisted_net.server.stream}: both TCP framings on an in-memory
transport, with a L{Clock} as the factory's clock.
"""

from __future__ import annotations

from itertools import combinations, pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs

from twisted_net.config import ServerConfig
from twisted_net.hello import reply, split_seed_read
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.framing import LineProtocol, SeedProtocol
from twisted_net.server.session import GreetingProtocol

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
TOO_LONG = b"error: message longer than 5 bytes\r\n"


class Session:
    """
    One connection of a L{GreetingFactory} on a L{StringTransport}; the
    greeting is taken off the transport and kept in C{greeting}.
    """

    def __init__(
        self,
        framing: str,
        config: ServerConfig | None = None,
        *,
        factory: GreetingFactory | None = None,
        clock: Clock | None = None,
        peer: IPv4Address | IPv6Address = PEER,
    ) -> None:
        self.clock: Clock = clock or Clock()
        self.factory: GreetingFactory = factory or GreetingFactory(
            framing, config, clock=self.clock
        )
        protocol = self.factory.buildProtocol(peer)
        assert isinstance(protocol, GreetingProtocol)
        self.protocol: GreetingProtocol = protocol
        self.transport: StringTransport = StringTransport(peerAddress=peer)
        self.protocol.makeConnection(self.transport)
        self.greeting: bytes = self.take()

    def take(self) -> bytes:
        """
        What the server wrote since the last call.
        """
        written: bytes = self.transport.value()
        self.transport.clear()
        return written

    def send(self, data: bytes) -> bytes:
        """
        Deliver one read; return what the server wrote at once.
        """
        self.protocol.dataReceived(data)
        return self.take()

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)


def splits(data: bytes, parts: int) -> list[list[bytes]]:
    """
    Every way to cut C{data} into C{parts} non-empty reads (TCP never
    delivers an empty read).
    """
    found = []
    for cuts in combinations(range(1, len(data)), parts - 1):
        bounds = [0, *cuts, len(data)]
        found.append([data[start:end] for start, end in pairwise(bounds)])
    return found


# Greeting and protocol classes -----------------------------------------------


def test_factory_builds_the_framing_asked_for() -> None:
    """
    C{seed} builds L{SeedProtocol}, C{line} L{LineProtocol}; anything else
    is refused.
    """
    assert isinstance(Session("seed").protocol, SeedProtocol)
    assert isinstance(Session("line").protocol, LineProtocol)
    with pytest.raises(ValueError, match="unknown framing"):
        GreetingFactory("lines", clock=Clock())


def test_greetings() -> None:
    """
    C{seed} greets with the tutorial's bare C{Welcome!}; C{line} ends it
    with CRLF.
    """
    assert Session("seed").greeting == b"Welcome!"
    assert Session("line").greeting == b"Welcome!\r\n"


# seed framing ----------------------------------------------------------------


def test_seed_tutorial_session() -> None:
    """
    The tutorial's session: each read is one message, answered at once with
    no line ending; C{exit} closes without a reply.
    """
    session = Session("seed")
    for name in [b"Michael", b"Tracy", b"Sarah"]:
        assert session.send(name) == b"Hello, " + name + b"!"
        assert not session.closed
    assert session.send(b"exit") == b""
    assert session.closed


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (b"Michael\n", b"Hello, Michael!\n"),
        (b"Michael\r\n", b"Hello, Michael!\r\n"),
        (b"Michael\nTracy\r\n", b"Hello, Michael!\nHello, Tracy!\r\n"),
        (b"Michael\nTra", b"Hello, Michael!\nHello, Tra!"),
        (b"\n", b"Hello, !\n"),
    ],
)
def test_seed_lines_keep_their_ending(read: bytes, expected: bytes) -> None:
    """
    A read holding line endings is one message per line, and each reply
    ends with its line's own ending (what an C{nc} user sees).
    """
    assert Session("seed").send(read) == expected


def test_seed_each_read_is_a_message() -> None:
    """
    Every way to cut C{Michael} into two reads is answered as two messages,
    each read at once.
    """
    for first, second in splits(b"Michael", 2):
        session = Session("seed")
        assert session.send(first) == b"Hello, " + first + b"!"
        assert session.send(second) == b"Hello, " + second + b"!"


def test_seed_every_split_follows_the_per_read_rule() -> None:
    """
    For every 2-way and 3-way cut of a session with mixed line endings, each
    read is answered at once, line by line within the read.
    """
    data = b"Michael\nTracy\r\nSa"
    for parts in (2, 3):
        for reads in splits(data, parts):
            session = Session("seed")
            for read in reads:
                expected = b"".join(reply(m) + e for m, e in split_seed_read(read))
                assert session.send(read) == expected, reads


@pytest.mark.parametrize("exit_read", [b"exit", b"exit\n", b"exit\r\n"])
def test_seed_exit_closes(exit_read: bytes) -> None:
    """
    C{exit}, with or without a line ending, closes without a reply.
    """
    session = Session("seed")
    assert session.send(exit_read) == b""
    assert session.closed


def test_seed_exit_line_answers_earlier_lines_only() -> None:
    """
    In one read, lines before C{exit} are answered; lines after it are not.
    """
    session = Session("seed")
    assert session.send(b"Michael\nexit\nTracy\n") == b"Hello, Michael!\n"
    assert session.closed
    assert session.send(b"Sarah") == b""


@pytest.mark.parametrize("read", [b"exits", b"EXIT", b" exit", b"exit \n"])
def test_seed_near_exit_is_a_message(read: bytes) -> None:
    """
    Only the exact message C{exit} closes.
    """
    session = Session("seed")
    assert session.send(read).startswith(b"Hello, ")
    assert not session.closed


# line framing ----------------------------------------------------------------

LINE_SESSION = b"Michael\r\nTracy\n\xff\x00\r\nSarah\n"
LINE_REPLIES = b"Hello, Michael!\r\nHello, Tracy!\r\nHello, \xff\x00!\r\nHello, Sarah!\r\n"


def test_line_pipelined_read() -> None:
    """
    Several lines in one read get one CRLF-terminated reply each, in order.
    """
    assert Session("line").send(LINE_SESSION) == LINE_REPLIES


@pytest.mark.parametrize("parts", [2, 3])
def test_line_every_split_gives_the_same_replies(parts: int) -> None:
    """
    However the bytes of a session are cut into reads, the replies are the
    same, and no partial line is ever answered.
    """
    cuts = splits(LINE_SESSION, parts)
    assert len(cuts) > 20
    for reads in cuts:
        session = Session("line")
        written = b"".join(session.send(read) for read in reads)
        assert written == LINE_REPLIES, reads
        assert not session.closed


@pytest.mark.parametrize("parts", [2, 3])
def test_line_every_split_of_exit(parts: int) -> None:
    """
    However C{...exit\\r\\n...} is cut into reads, everything before C{exit}
    is answered, then the connection closes and later lines are ignored.
    """
    data = b"Michael\nexit\r\nTracy\n"
    for reads in splits(data, parts):
        session = Session("line")
        written = b"".join(session.send(read) for read in reads)
        assert written == b"Hello, Michael!\r\n", reads
        assert session.closed


def test_line_partial_line_waits() -> None:
    """
    A line without its line feed is buffered, not answered.
    """
    session = Session("line")
    assert session.send(b"Mich") == b""
    assert session.send(b"ael\r") == b""
    assert session.send(b"\n") == b"Hello, Michael!\r\n"


def test_line_inner_carriage_return_is_kept() -> None:
    """
    Only a C{\\r} right before the line feed is dropped; others are part of
    the message, and an empty line is an empty message.
    """
    session = Session("line")
    assert session.send(b"a\rb\n") == b"Hello, a\rb!\r\n"
    assert session.send(b"\r\n") == b"Hello, !\r\n"


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=40).filter(
                lambda m: b"\n" not in m and not m.endswith(b"\r") and m != b"exit"
            ),
            st.sampled_from([b"\n", b"\r\n"]),
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_line_any_bytes_any_chunking(messages: list[tuple[bytes, bytes]], chunk: int) -> None:
    """
    Any bytes (invalid UTF-8, NUL) in any read size come back inside the
    replies, one per line, in order.
    """
    data = b"".join(message + ending for message, ending in messages)
    session = Session("line")
    written = b"".join(
        session.send(data[start : start + chunk]) for start in range(0, len(data), chunk)
    )
    assert written == b"".join(b"Hello, " + m + b"!\r\n" for m, _ in messages)


@given(st.binary(min_size=1, max_size=200).filter(lambda m: b"\n" not in m and m != b"exit"))
def test_seed_any_bytes(message: bytes) -> None:
    """
    Any bytes without a line feed are one message, echoed untouched.
    """
    assert Session("seed").send(message) == b"Hello, " + message + b"!"


# max-message -------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_message_at_the_limit_is_answered(framing: str) -> None:
    """
    A message exactly C{max_message} bytes long is answered (the line
    ending does not count).
    """
    session = Session(framing, ServerConfig(max_message=5))
    assert session.send(b"12345\r\n").startswith(b"Hello, 12345!")
    assert not session.closed


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_longer_message_gets_error_then_close(framing: str) -> None:
    """
    A longer message gets one C{error: ...} line, then the connection
    closes; earlier messages of the same read are answered first.
    """
    session = Session(framing, ServerConfig(max_message=5))
    written = session.send(b"ok\n123456\nlater\n")
    ending = b"\n" if framing == "seed" else b"\r\n"
    assert written == b"Hello, ok!" + ending + TOO_LONG
    assert session.closed
    assert session.factory.counters.refusals["max-message"] == 1


def test_seed_long_read_without_line_feed_is_refused() -> None:
    """
    In C{seed}, a read is a message, so a long read is refused as a whole.
    """
    session = Session("seed", ServerConfig(max_message=5))
    assert session.send(b"123456") == TOO_LONG
    assert session.closed


def test_line_long_partial_line_is_refused_before_its_end() -> None:
    """
    C{line} does not buffer without bound: a partial line longer than the
    limit (plus room for a C{\\r}) is refused before its line feed arrives.
    """
    session = Session("line", ServerConfig(max_message=5))
    assert session.send(b"123456") == b""
    assert not session.closed
    assert session.send(b"7") == TOO_LONG
    assert session.closed


def test_line_long_line_in_pieces_is_refused() -> None:
    """
    A 6-byte line that arrives in pieces is refused when its end arrives.
    """
    session = Session("line", ServerConfig(max_message=5))
    assert session.send(b"123") == b""
    assert session.send(b"456\n") == TOO_LONG
    assert session.closed


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
