"""
Tests for L{twisted_net.server.framing}: both TCP framings on an in-memory
transport, with a L{Clock} as the factory's clock.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sessions import TOO_LONG, Session, splits
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from twisted_net.config import ServerConfig
from twisted_net.hello import FRAMING_NAMES, reply, split_seed_read
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.framing import FRAMINGS, SeedProtocol
from twisted_net.server.session import GreetingProtocol

# Greeting and protocol classes -----------------------------------------------


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


# The registry ------------------------------------------------------------------


def test_every_framing_name_has_its_protocol() -> None:
    """
    The server has a protocol for each framing name of the registry in
    L{twisted_net.hello}, and no other.
    """
    assert tuple(FRAMINGS) == FRAMING_NAMES
    for name, protocol in FRAMINGS.items():
        assert isinstance(Session(name).protocol, protocol)


# The seed framing's fast path ----------------------------------------------------


class GeneralSeed(SeedProtocol):
    """
    The seed framing without its fast path: every read takes the session's
    general C{dataReceived}, then C{cut}, then C{messagesReceived}.
    """

    dataReceived = GreetingProtocol.dataReceived


def test_the_general_seed_has_no_fast_path() -> None:
    """
    The reference of the comparison below really takes the general path
    (otherwise it would compare the fast path with itself).
    """
    session = Session("seed")
    session.factory.protocol = GeneralSeed  # type: ignore[assignment]
    general = Session("seed", factory=session.factory)
    assert type(general.protocol) is GeneralSeed
    cut: list[bytes] = []
    general.protocol.cut = cut.append  # type: ignore[method-assign]
    general.send(b"Michael")
    assert cut == [b"Michael"]


_SEED_READS = st.one_of(
    st.binary(max_size=12),
    st.lists(
        st.sampled_from([b"a", b"Mi", b"exit", b"\r", b"\n", b"\n", b"Sarah", b"Michael Jordan"])
    ).map(b"".join),
    st.sampled_from(
        [b"exit", b"exit\n", b"Mi\nexit", b"Mi\r\nJo", b"Mi\nJo\n", b"a\n\nb\n", b"\n", b"Mi\r\n"]
    ),
)


@given(
    reads=st.lists(_SEED_READS.filter(bool), min_size=1, max_size=5),
    max_message=st.sampled_from([3, 6, 64]),
    delay=st.sampled_from([0.0, 0.5]),
    log_messages=st.booleans(),
    half_close=st.booleans(),
)
def test_seed_fast_path_answers_as_the_general_path(
    reads: list[bytes], max_message: int, delay: float, log_messages: bool, half_close: bool
) -> None:
    """
    Whatever the reads and the config, the seed framing with its fast path
    writes the same bytes, logs the same messages, counts the same and
    closes when the general path does.
    """
    config = ServerConfig(
        max_message=max_message, delay=delay, log_messages=log_messages, max_per_peer=0
    )
    results = []
    for protocol in (SeedProtocol, GeneralSeed):
        factory = GreetingFactory("seed", config, clock=Clock())
        factory.protocol = protocol  # type: ignore[assignment]
        with capturedLogs() as events:
            session = Session("seed", factory=factory, clock=factory.clock)  # type: ignore[arg-type]
            assert type(session.protocol) is protocol
            for data in reads:
                session.protocol.dataReceived(data)
            if half_close:
                session.protocol.readConnectionLost()  # type: ignore[attr-defined]
            session.clock.advance(10.0)
        messages = [event["message"] for event in events if event.get("event") == "message"]
        results.append(
            (session.transport.value(), session.closed, factory.counters.snapshot(), messages)
        )
    assert results[0] == results[1]


@pytest.mark.parametrize(
    ("read", "written", "closed"),
    [
        (b"Michael", b"Hello, Michael!", False),
        (b"Mi\nJo\n", b"Hello, Mi!\nHello, Jo!\n", False),
        (b"exit", b"", True),
    ],
)
def test_seed_common_reads_skip_the_general_path(read: bytes, written: bytes, closed: bool) -> None:
    """
    One message, whole lines ending in bare line feeds, and C{exit} are
    answered by the fast path alone, without cutting the read into a list of
    messages for the general policy.
    """
    session = Session("seed")
    session.protocol.messagesReceived = None  # type: ignore[assignment, method-assign]
    assert session.send(read) == written
    assert session.closed is closed
