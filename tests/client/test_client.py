"""
Unit tests of L{twisted_net.client.tcp}'s protocols, in memory: a
L{StringTransport} and a L{Clock} for the TCP conversations (every reply
split at every byte, or joined), L{twisted.test.iosim} against the real
server protocols, and a fake UDP transport for L{UDPGreetingClient}.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim

from twisted_net.client.tcp import (
    GreetingClientProtocol,
    LineClientProtocol,
    ReplyTimeoutError,
    SeedClientProtocol,
    ServerClosedError,
    ServerRefusedError,
    TLSError,
    UDPGreetingClient,
    client_protocol,
    greet,
    greet_udp,
)
from twisted_net.config import ServerConfig
from twisted_net.server.factory import GreetingFactory

NAMES = [b"Michael", b"Tracy", b"Sarah"]
SEED_REPLIES = [b"Welcome!", b"Hello, Michael!", b"Hello, Tracy!", b"Hello, Sarah!"]


def connected(
    framing: str, timeout: float = 5.0
) -> tuple[GreetingClientProtocol, StringTransport, Clock, list[bytes]]:
    clock = Clock()
    shown: list[bytes] = []
    protocol = client_protocol(framing, clock, timeout, shown.append)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport, clock, shown


def result_of(protocol: GreetingClientProtocol) -> Any:
    outcome: list[Any] = []
    protocol.done.addBoth(outcome.append)
    assert outcome, "the conversation has not finished"
    return outcome[0]


def close(protocol: GreetingClientProtocol, reason: type[Exception] = ConnectionDone) -> None:
    protocol.connectionLost(Failure(reason()))


def feed_bytewise(protocol: GreetingClientProtocol, data: bytes) -> None:
    for index in range(len(data)):
        protocol.dataReceived(data[index : index + 1])


# seed ----------------------------------------------------------------------------


def test_seed_waits_for_greeting_then_sends_one_at_a_time() -> None:
    """
    Nothing is sent before the greeting; then one message, and the next
    only after the previous reply; C{exit} after the last; the result is
    every message the server sent.
    """
    protocol, transport, _, shown = connected("seed")
    for name in NAMES:
        protocol.send(name)
    protocol.finish()
    assert transport.value() == b""
    protocol.dataReceived(b"Welcome!")
    assert transport.value() == b"Michael"
    transport.clear()
    protocol.dataReceived(b"Hello, Michael!")
    assert transport.value() == b"Tracy"
    transport.clear()
    protocol.dataReceived(b"Hello, Tracy!")
    assert transport.value() == b"Sarah"
    transport.clear()
    protocol.dataReceived(b"Hello, Sarah!")
    assert transport.value() == b"exit"
    close(protocol)
    assert result_of(protocol) == SEED_REPLIES
    assert shown == SEED_REPLIES


def test_seed_replies_split_at_every_byte() -> None:
    """
    However TCP cuts the greeting and the replies, each is one message.
    """
    protocol, transport, _, shown = connected("seed")
    for name in NAMES:
        protocol.send(name)
    protocol.finish()
    for message in SEED_REPLIES:
        feed_bytewise(protocol, message)
    assert transport.value() == b"MichaelTracySarahexit"
    close(protocol)
    assert result_of(protocol) == SEED_REPLIES
    assert shown == SEED_REPLIES


def test_seed_greeting_and_reply_in_one_read() -> None:
    """
    A read holding the greeting and more is cut by content.
    """
    protocol, transport, _, _ = connected("seed")
    protocol.send(b"x")
    protocol.finish()
    protocol.dataReceived(b"Welcome!Hello, x!")
    assert transport.value() == b"xexit"
    close(protocol)
    assert result_of(protocol) == [b"Welcome!", b"Hello, x!"]


def test_seed_name_with_line_feeds_gets_one_reply_per_line() -> None:
    """
    The seed server answers each line of a read; the client expects that.
    """
    protocol, transport, _, _ = connected("seed")
    protocol.send(b"a\nb")
    protocol.finish()
    protocol.dataReceived(b"Welcome!")
    protocol.dataReceived(b"Hello, a!\nHel")
    assert transport.value() == b"a\nb"
    protocol.dataReceived(b"lo, b!")
    assert transport.value() == b"a\nbexit"
    close(protocol)
    assert result_of(protocol) == [b"Welcome!", b"Hello, a!\n", b"Hello, b!"]


def test_seed_unexpected_bytes_are_one_message_per_read() -> None:
    """
    A server that answers something else still has its say, a read at a
    time, as in the tutorial.
    """
    protocol, _, _, shown = connected("seed")
    protocol.send(b"x")
    protocol.dataReceived(b"Welcome!")
    protocol.dataReceived(b"Bonjour x")
    assert shown == [b"Welcome!", b"Bonjour x"]


def test_seed_error_line_split_is_kept_whole() -> None:
    """
    An C{error: ...} line is one message however it is split, and makes the
    conversation fail with the server's words.
    """
    protocol, _, _, shown = connected("seed")
    protocol.send(b"x" * 5000)
    protocol.dataReceived(b"Welcome!")
    feed_bytewise(protocol, b"error: message longer than 4096 bytes\r\n")
    close(protocol)
    error = result_of(protocol).value
    assert isinstance(error, ServerRefusedError)
    assert "message longer than 4096 bytes" in str(error)
    assert shown == [b"Welcome!", b"error: message longer than 4096 bytes"]


def test_seed_refuses_empty_and_exit() -> None:
    protocol, _, _, _ = connected("seed")
    with pytest.raises(ValueError, match="empty"):
        protocol.send(b"")
    with pytest.raises(ValueError, match="exit"):
        protocol.send(b"exit")
    with pytest.raises(ValueError, match="exit"):
        protocol.send(b"a\nexit\n")


def test_closed_before_every_reply() -> None:
    """
    A server that closes early fails the conversation, saying how many
    messages went unanswered, and keeps what it said.
    """
    protocol, _, _, _ = connected("seed")
    for name in NAMES:
        protocol.send(name)
    protocol.finish()
    protocol.dataReceived(b"Welcome!Hello, Michael!")
    close(protocol, ConnectionLost)
    error = result_of(protocol).value
    assert isinstance(error, ServerClosedError)
    assert "2 message(s) unanswered" in str(error)
    assert error.messages == [b"Welcome!", b"Hello, Michael!"]


def test_timeout_waiting_for_greeting_aborts() -> None:
    protocol, transport, clock, _ = connected("seed", timeout=3)
    clock.advance(2.9)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting
    close(protocol, ConnectionLost)
    error = result_of(protocol).value
    assert isinstance(error, ReplyTimeoutError)
    assert "the greeting" in str(error)


def test_timeout_restarts_with_each_message_and_stops_when_idle() -> None:
    """
    The timer counts from the last message received, and does not run while
    the client has nothing to wait for (interactive use).
    """
    protocol, transport, clock, _ = connected("seed", timeout=3)
    protocol.dataReceived(b"Welcome!")
    clock.advance(100)
    assert not transport.disconnecting
    protocol.send(b"a")
    clock.advance(2)
    protocol.dataReceived(b"Hello, a!")
    protocol.send(b"b")
    clock.advance(2)
    assert not transport.disconnecting
    clock.advance(1.5)
    assert transport.disconnecting
    close(protocol, ConnectionLost)
    assert "a reply to 'b'" in str(result_of(protocol).value)


def test_seed_client_against_line_server_hints_at_framing() -> None:
    protocol, _, clock, _ = connected("seed", timeout=1)
    protocol.send(b"a")
    protocol.dataReceived(b"Welcome!\r\n")
    clock.advance(1)
    close(protocol, ConnectionLost)
    assert "framing 'line'" in str(result_of(protocol).value)


def test_cancel_aborts_the_connection() -> None:
    """
    A caller that gives up (C{addTimeout}, C{cancel}) drops the connection.
    """
    protocol, transport, _, _ = connected("seed")
    protocol.send(b"a")
    protocol.dataReceived(b"Welcome!")
    protocol.done.cancel()
    assert transport.disconnecting
    close(protocol, ConnectionLost)
    assert isinstance(result_of(protocol).value, CancelledError)


# line ----------------------------------------------------------------------------


def test_line_pipelines_and_strips_line_endings() -> None:
    """
    Every message is sent at once after the greeting; replies are lines,
    handed over without their ending, however they are split.
    """
    protocol, transport, _, shown = connected("line")
    for name in NAMES:
        protocol.send(name)
    protocol.finish()
    feed_bytewise(protocol, b"Welcome!\r\n")
    assert transport.value() == b"Michael\r\nTracy\r\nSarah\r\n"
    feed_bytewise(protocol, b"Hello, Michael!\r\nHello, Tracy!\nHello, Sarah!\r\n")
    assert transport.value().endswith(b"Sarah\r\nexit\r\n")
    close(protocol)
    assert result_of(protocol) == SEED_REPLIES
    assert shown == SEED_REPLIES


def test_line_refuses_line_endings_in_a_message() -> None:
    protocol, _, _, _ = connected("line")
    with pytest.raises(ValueError, match="line ending"):
        protocol.send(b"a\nb")
    with pytest.raises(ValueError, match="line ending"):
        protocol.send(b"a\r")
    protocol.send(b"")


def test_line_client_against_seed_server_hints_at_framing() -> None:
    """
    The greeting came without a line ending: the timeout says the line
    ending is missing (not the greeting, which is shown), and why.
    """
    protocol, _, clock, shown = connected("line", timeout=1)
    protocol.dataReceived(b"Welcome!")
    clock.advance(1)
    close(protocol, ConnectionLost)
    text = str(result_of(protocol).value)
    assert shown == [b"Welcome!"]
    assert "waiting for the greeting's line ending" in text
    assert "waiting for the greeting " not in text
    assert "framing 'seed'" in text


def test_line_client_silent_server_waits_for_the_greeting() -> None:
    protocol, _, clock, _ = connected("line", timeout=1)
    clock.advance(1)
    close(protocol, ConnectionLost)
    text = str(result_of(protocol).value)
    assert text == "timed out after 1 s waiting for the greeting"


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            SSL.Error([("SSL routines", "", "certificate verify failed")]),
            "TLS error: certificate verify failed (the server's certificate is not signed",
        ),
        (
            SSL.Error([("SSL routines", "", "wrong version number")]),
            "TLS error: wrong version number (is the server speaking TLS",
        ),
        (VerificationError([]), "TLS error: the server's certificate is not for this host"),
    ],
)
def test_tls_failure_is_one_clear_reason(error: Exception, text: str) -> None:
    """
    A TLS failure is a L{TLSError} that says what failed in words, not the
    raw OpenSSL tuples, and not as a server that closed the connection.
    """
    protocol, _, _, _ = connected("seed")
    protocol.connectionLost(Failure(error))
    failure = result_of(protocol).value
    assert isinstance(failure, TLSError)
    assert str(failure).startswith(text)
    assert "[(" not in str(failure)
    assert "closed the connection" not in str(failure)
    assert failure.reason.value is error


def test_line_overlong_server_line_aborts() -> None:
    protocol, transport, _, _ = connected("line")
    protocol.dataReceived(b"x" * (LineClientProtocol.max_buffer + 1))
    assert transport.disconnecting
    close(protocol, ConnectionLost)
    assert "without ending a message" in str(result_of(protocol).value)


@pytest.mark.parametrize(
    ("names", "text"),
    [
        (["Ana"], "names must be bytes, not str"),
        ([b"Ana", 7], "names must be bytes, not int"),
        ("Ana", "names must be a sequence of bytes"),
        (b"Ana", "names must be a sequence of bytes"),
    ],
)
def test_names_must_be_bytes(names: Any, text: str) -> None:
    """
    C{str} names (or one name instead of a list) are refused at once, with
    a clear C{TypeError}, before any connection or datagram.
    """
    clock = Clock()
    with pytest.raises(TypeError, match=text):
        greet(clock, None, names)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=text):
        greet_udp(None, "127.0.0.1", 9999, names)  # type: ignore[arg-type]


def test_send_refuses_str() -> None:
    protocol, transport, _, _ = connected("line")
    with pytest.raises(TypeError, match="messages must be bytes, not str"):
        protocol.send("Ana")  # type: ignore[arg-type]
    protocol.dataReceived(b"Welcome!\r\n")
    assert transport.value() == b""


def test_unknown_framing() -> None:
    with pytest.raises(ValueError, match="unknown framing"):
        client_protocol("json", Clock())


# against the real server protocols, in memory -----------------------------------------


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_conversation_with_server_protocol_over_iosim(framing: str) -> None:
    """
    The client and the server's own protocol, connected by L{iosim}, with
    the server's replies delayed a second as in the tutorial.
    """
    clock = Clock()
    factory = GreetingFactory(framing, ServerConfig(delay=1.0), clock=clock)
    factory.startFactory()
    server = factory.buildProtocol(None)
    assert server is not None
    client = client_protocol(framing, clock, 5.0)
    for name in NAMES:
        client.send(name)
    client.finish()
    pump = iosim.connect(server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client))
    for _ in range(10):
        clock.advance(1)
        pump.flush()
    factory.stopFactory()
    assert result_of(client) == SEED_REPLIES
    assert isinstance(client, SeedClientProtocol if framing == "seed" else LineClientProtocol)


# udp ---------------------------------------------------------------------------------


class FakeUDPTransport:
    """
    Records datagrams written, with their destination.
    """

    def __init__(self) -> None:
        self.written: list[tuple[bytes, Any]] = []

    def write(self, datagram: bytes, addr: Any = None) -> None:
        self.written.append((datagram, addr))


def udp_client(
    names: list[bytes], host: str = "127.0.0.1", retries: int = 2
) -> tuple[UDPGreetingClient, FakeUDPTransport, Clock, list[bytes]]:
    clock = Clock()
    shown: list[bytes] = []
    client = UDPGreetingClient(host, 9999, names, 1.0, retries, clock, shown.append)
    transport = FakeUDPTransport()
    client.makeConnection(transport)  # type: ignore[arg-type]
    client.begin()
    return client, transport, clock, shown


def udp_result(client: UDPGreetingClient) -> Any:
    outcome: list[Any] = []
    client.done.addBoth(outcome.append)
    assert outcome
    return outcome[0]


def test_udp_one_request_at_a_time_in_order() -> None:
    client, transport, _, shown = udp_client(NAMES)
    server = ("127.0.0.1", 9999)
    assert transport.written == [(b"Michael", server)]
    client.datagramReceived(b"Hello, Michael!", server)
    client.datagramReceived(b"Hello, Tracy!", server)
    client.datagramReceived(b"Hello, Sarah!", server)
    assert [datagram for datagram, _ in transport.written] == NAMES
    assert udp_result(client) == SEED_REPLIES[1:]
    assert shown == SEED_REPLIES[1:]


def test_udp_ignores_other_sources_and_unmatched_replies() -> None:
    """
    Datagrams from another address or port, and replies that are not the
    one awaited (late or forged), do not count.
    """
    client, _, _, shown = udp_client([b"a"])
    client.datagramReceived(b"Hello, a!", ("127.0.0.2", 9999))
    client.datagramReceived(b"Hello, a!", ("127.0.0.1", 9998))
    client.datagramReceived(b"Hello, b!", ("127.0.0.1", 9999))
    assert shown == []
    assert not client.done.called
    client.datagramReceived(b"Hello, a!", ("127.0.0.1", 9999))
    assert udp_result(client) == [b"Hello, a!"]


def test_udp_ipv6_source_compared_as_address() -> None:
    client, transport, _, _ = udp_client([b"a"], host="0:0::1")
    assert transport.written == [(b"a", ("0:0::1", 9999))]
    client.datagramReceived(b"Hello, a!", ("::1", 9999))
    assert udp_result(client) == [b"Hello, a!"]


def test_udp_retries_then_reports() -> None:
    """
    A missing reply is asked for again after each timeout, C{retries}
    times, then the conversation fails with what came before.
    """
    client, transport, clock, _ = udp_client([b"a", b"b"], retries=2)
    client.datagramReceived(b"Hello, a!", ("127.0.0.1", 9999))
    assert len(transport.written) == 2
    clock.advance(1.0)
    clock.advance(1.0)
    assert [datagram for datagram, _ in transport.written] == [b"a", b"b", b"b", b"b"]
    assert not client.done.called
    clock.advance(1.0)
    error = udp_result(client).value
    assert isinstance(error, ReplyTimeoutError)
    assert str(error) == "no reply to 'b' after 3 attempt(s), 1 s each (is the server running?)"
    assert error.messages == [b"Hello, a!"]
    clock.advance(10)
    assert len(transport.written) == 4


def test_udp_tries_every_name_after_one_goes_unanswered() -> None:
    """
    A name that stays unanswered does not stop the others: each is asked,
    each reply is handed over as it comes, and the failure, at the end,
    names every name still missing, one error each.
    """
    client, transport, clock, shown = udp_client([b"a", b"b", b"c"], retries=1)
    server = ("127.0.0.1", 9999)
    clock.advance(1.0)
    clock.advance(1.0)
    assert [datagram for datagram, _ in transport.written] == [b"a", b"a", b"b"]
    client.datagramReceived(b"Hello, b!", server)
    clock.advance(1.0)
    clock.advance(1.0)
    assert [datagram for datagram, _ in transport.written] == [b"a", b"a", b"b", b"c", b"c"]
    assert shown == [b"Hello, b!"]
    error = udp_result(client).value
    assert isinstance(error, ReplyTimeoutError)
    assert [str(problem) for problem in error.problems] == [
        "no reply to 'a' after 2 attempt(s), 1 s each (is the server running?)",
        "no reply to 'c' after 2 attempt(s), 1 s each (is the server running?)",
    ]
    assert error.messages == [b"Hello, b!"]
    assert clock.getDelayedCalls() == []


def test_udp_late_reply_still_counts() -> None:
    """
    A reply that comes after its name was given up on is still a reply:
    it is handed over, and that name is no longer reported missing.
    """
    client, _, clock, shown = udp_client([b"a", b"b"], retries=0)
    clock.advance(1.0)
    client.datagramReceived(b"Hello, a!", ("127.0.0.1", 9999))
    client.datagramReceived(b"Hello, b!", ("127.0.0.1", 9999))
    assert shown == [b"Hello, a!", b"Hello, b!"]
    assert udp_result(client) == [b"Hello, a!", b"Hello, b!"]


def test_udp_says_what_arrived_instead() -> None:
    """
    When something other than the reply came, the error says what, and
    from whom when it was not the server, instead of asking whether the
    server runs.
    """
    client, _, clock, _ = udp_client([b"a", b"b"], retries=0)
    client.datagramReceived(b"garbage", ("127.0.0.1", 9999))
    client.datagramReceived(b"more garbage", ("127.0.0.1", 9999))
    clock.advance(1.0)
    client.datagramReceived(b"Hello, b!", ("127.0.0.2", 4000))
    clock.advance(1.0)
    error = udp_result(client).value
    assert [str(problem) for problem in error.problems] == [
        "no reply to 'a' after 1 attempt(s), 1 s each; the server sent 'garbage' "
        "(and 1 more datagram(s)) instead",
        "no reply to 'b' after 1 attempt(s), 1 s each; got 'Hello, b!' from 127.0.0.2:4000 instead",
    ]
    assert "is the server running" not in str(error)


def test_udp_duplicate_reply_is_not_what_came_instead() -> None:
    """
    The second copy of a reply (the answer to a retry) is ignored, not
    reported as what came instead of the next name's reply.
    """
    client, _, clock, _ = udp_client([b"a", b"b"], retries=0)
    client.datagramReceived(b"Hello, a!", ("127.0.0.1", 9999))
    client.datagramReceived(b"Hello, a!", ("127.0.0.1", 9999))
    clock.advance(1.0)
    assert str(udp_result(client).value) == (
        "no reply to 'b' after 1 attempt(s), 1 s each (is the server running?)"
    )


def test_udp_refused_name_does_not_stop_the_others() -> None:
    client, transport, _, shown = udp_client([b"x", b"y"])
    client.datagramReceived(b"error: message longer than 4096 bytes\r\n", ("127.0.0.1", 9999))
    assert [datagram for datagram, _ in transport.written] == [b"x", b"y"]
    client.datagramReceived(b"Hello, y!", ("127.0.0.1", 9999))
    assert shown == [b"Hello, y!"]
    error = udp_result(client).value
    assert isinstance(error, ServerRefusedError)
    assert str(error) == "the server refused 'x': message longer than 4096 bytes"


def test_udp_retry_answered() -> None:
    client, transport, clock, _ = udp_client([b"a"], retries=1)
    clock.advance(1.0)
    assert len(transport.written) == 2
    client.datagramReceived(b"Hello, a!", ("127.0.0.1", 9999))
    assert udp_result(client) == [b"Hello, a!"]
    assert clock.getDelayedCalls() == []


def test_udp_server_error_fails() -> None:
    client, _, _, _ = udp_client([b"x"])
    client.datagramReceived(b"error: message longer than 4096 bytes\r\n", ("127.0.0.1", 9999))
    error = udp_result(client).value
    assert isinstance(error, ServerRefusedError)
    assert "message longer than 4096 bytes" in str(error)


def test_udp_cancel_stops_retrying() -> None:
    client, transport, clock, _ = udp_client([b"a"])
    client.done.cancel()
    clock.advance(10)
    assert len(transport.written) == 1
    assert isinstance(udp_result(client).value, CancelledError)


def test_udp_reply_keeps_line_ending() -> None:
    client, _, _, _ = udp_client([b"a\n"])
    client.datagramReceived(b"Hello, a\n!", ("127.0.0.1", 9999))
    assert not client.done.called
    client.datagramReceived(b"Hello, a!\n", ("127.0.0.1", 9999))
    assert udp_result(client) == [b"Hello, a!\n"]


@pytest.mark.parametrize(
    "name",
    [
        "cli.bench",
        "cli.bench.command",
        "cli.bench.histogram",
        "cli.bench.load",
        "cli.bench.process",
        "cli.bench.report",
        "cli.commands",
        "cli.errors",
        "cli.main",
        "cli.parser",
        "client.conversation",
        "client.endpoints",
        "client.framings",
        "client.tcp",
        "client.errors",
        "cli.console",
        "client.fetch",
        "client.udp",
    ],
)
def test_client_modules_declare_their_public_names(name: str) -> None:
    """
    Every client module has an C{__all__} that lists what it defines for
    users (so C{help()} and C{import *} show the API, not C{Deferred} or
    C{deque}), and nothing that does not exist.
    """
    module = importlib.import_module(f"twisted_net.{name}")
    public = set(module.__all__)
    assert all(hasattr(module, item) for item in public)
    defined = {
        item
        for item, value in vars(module).items()
        if not item.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert defined <= public
    assert not public & {"Deferred", "deque", "Protocol", "Failure", "annotations"}
