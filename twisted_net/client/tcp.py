"""
Clients of the greeting protocol, as functions that return C{Deferred}s, for
programs that embed them; the C{twisted-net} command is a thin layer over
them.

  - L{greet}: one TCP conversation over any client endpoint (C{tcp:},
    C{tls:}, C{unix:}, ...), in either framing; L{connect_greeting} for
    conversations fed a message at a time (interactive use);
  - L{greet_udp}: the tutorial's UDP client, with a timeout, retries and
    replies matched to requests;
  - L{fetch} and L{fetch_raw}: the tutorial's HTTP client (re-exported from
    L{twisted_net.client.fetch}).

Peer bytes are never decoded: messages are handed over as C{bytes}, exactly
as the server framed them (line endings of the C{line} framing removed).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from twisted_net.client.errors import (
    TLS_FAILURES,
    ConversationError,
    MessageCallback,
    ReplyTimeoutError,
    ServerClosedError,
    ServerRefusedError,
    TLSError,
    checked_names,
    describe_tls_error,
    show_bytes,
)
from twisted_net.client.fetch import FetchError, FetchResult, fetch, fetch_raw
from twisted_net.client.udp import UDPGreetingClient, greet_udp
from twisted_net.hello import (
    ERROR_PREFIX,
    EXIT,
    FRAMING_CHOICES,
    GREETING,
    LINE_END,
    Framing,
    is_error,
    is_exit,
    reply,
    split_line_ending,
    split_seed_read,
)

__all__ = [
    "FRAMINGS",
    "ConversationError",
    "FetchError",
    "FetchResult",
    "Framing",
    "GreetingClientProtocol",
    "LineClientProtocol",
    "ReplyTimeoutError",
    "SeedClientProtocol",
    "ServerClosedError",
    "ServerRefusedError",
    "TLSError",
    "UDPGreetingClient",
    "client_protocol",
    "connect_greeting",
    "fetch",
    "fetch_raw",
    "greet",
    "greet_udp",
    "show_bytes",
]


def _check_no_exit(message: bytes) -> None:
    for part, _ in split_seed_read(message):
        if is_exit(part):
            raise ValueError("'exit' ends the session: it cannot be sent as a message")


class GreetingClientProtocol(Protocol):
    """
    One TCP conversation: wait for the greeting, send the queued messages
    (L{send}), collect every reply, and after L{finish} send C{exit} and wait
    for the server to close.  Subclasses choose the framing.

    The timeout runs whenever the client waits for the server (greeting,
    reply, close after C{exit}) and restarts with every message received.

    @cvar framing: the framing's command-line name.
    @ivar messages: the greeting and every reply so far, each separately.
    @ivar done: fires with L{messages} once the server closed after C{exit},
        or fails with a L{ConversationError} (or the connection's failure).
    """

    framing: ClassVar[str] = ""
    exit_bytes: ClassVar[bytes] = EXIT
    max_buffer: ClassVar[int] = 1 << 20
    """Bytes of one unfinished server message held before giving up."""

    def __init__(
        self,
        clock: IReactorTime,
        timeout: float = 10.0,
        on_message: MessageCallback | None = None,
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        self.on_message = on_message
        self.messages: list[bytes] = []
        self.done: Deferred[list[bytes]] = Deferred(self._cancel)
        self._buffer = b""
        self._unsent: deque[bytes] = deque()
        self._outstanding: deque[bytes] = deque()
        self._greeted = False
        self._finishing = False
        self._exit_sent = False
        self._lost = False
        self._timer: IDelayedCall | None = None
        self._failure: ConversationError | None = None

    # Public interface ------------------------------------------------------

    def check_message(self, message: bytes) -> None:
        """
        Refuse a message this framing cannot carry as one message.

        @raise ValueError: with a message fit for the user.
        """
        _check_no_exit(message)

    def send(self, message: bytes) -> None:
        """
        Queue one message; it is sent as soon as the framing allows.

        @raise ValueError: see L{check_message}.
        @raise TypeError: for a message that is not C{bytes}.
        """
        if self._finishing:
            raise RuntimeError("finish() was called: no more messages")
        if not isinstance(message, bytes):
            raise TypeError(f"messages must be bytes, not {type(message).__name__}")
        self.check_message(message)
        self._unsent.append(message)
        self._advance()

    def finish(self) -> None:
        """
        No more messages: once every reply is in, send C{exit}.
        """
        self._finishing = True
        self._advance()

    @property
    def waiting_for(self) -> int:
        """
        How many messages are queued or sent and not yet answered.
        """
        return len(self._unsent) + len(self._outstanding)

    # Framing hooks ------------------------------------------------------------

    def _send_unsent(self) -> None:
        raise NotImplementedError

    def _awaited(self) -> bytes:
        """
        The message whose reply is awaited.
        """
        return self._outstanding[0]

    def _framing_hint(self) -> str:
        """
        A hint for the timeout message when the server seems to use the
        other framing.
        """
        return ""

    def _waiting_for_greeting(self) -> str:
        """
        What the client waits for before the greeting is complete, for the
        timeout message.
        """
        return "the greeting"

    def _end_of_input(self) -> None:
        """
        The connection closed: hand over a partial message, if any.
        """
        if self._buffer:
            message, self._buffer = self._buffer, b""
            self._received(message)

    # Conversation ---------------------------------------------------------------

    def connectionMade(self) -> None:
        self._arm()

    def _received(self, message: bytes) -> None:
        self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
        if not self._greeted:
            self._greeted = True
        elif self._outstanding:
            self._outstanding.popleft()
        if is_error(message) and self._failure is None:
            self._failure = ServerRefusedError(
                f"the server refused: {show_bytes(split_line_ending(message)[0])}",
                self.messages,
            )
        self._advance()

    def _advance(self) -> None:
        if (
            not self._greeted
            or self._lost
            or self._exit_sent
            or self._failure is not None
            or self.transport is None
        ):
            return
        self._send_unsent()
        if self._finishing and not self._unsent and not self._outstanding:
            self._exit_sent = True
            self.transport.write(self.exit_bytes)
        self._arm()

    def _arm(self) -> None:
        """
        Run the timer while the server owes us something, restarting it.
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._lost or not self.timeout:
            return
        if not self._greeted or self._outstanding or self._exit_sent:
            self._timer = self.clock.callLater(self.timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        if not self._greeted:
            what = self._waiting_for_greeting()
        elif self._exit_sent:
            what = "the server to close after 'exit'"
        else:
            what = f"a reply to {show_bytes(self._awaited())!r}"
        self._failure = ReplyTimeoutError(
            f"timed out after {self.timeout:g} s waiting for {what}{self._framing_hint()}",
            self.messages,
        )
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _overflow(self) -> None:
        self._failure = ConversationError(
            f"the server sent more than {self.max_buffer} bytes without ending a message",
            self.messages,
        )
        self._buffer = b""
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _cancel(self, _: Deferred[list[bytes]]) -> None:
        """
        The caller gave up: drop the connection.
        """
        if self.transport is not None and not self._lost:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._end_of_input()
        self._lost = True
        self._arm()
        if self.done.called:
            return
        if self._failure is not None:
            self.done.errback(self._failure)
        elif self._exit_sent and not self._outstanding:
            self.done.callback(self.messages)
        else:
            self.done.errback(self._closed_early(reason))

    def _closed_early(self, reason: Failure) -> ConversationError:
        if reason.check(*TLS_FAILURES):
            return TLSError(f"TLS error: {describe_tls_error(reason.value)}", self.messages, reason)
        cause = "" if reason.check(ConnectionDone) else reason.getErrorMessage()
        if not self._greeted:
            what = "before its greeting"
        elif not self.waiting_for:
            what = "before the client said 'exit'"
        else:
            what = f"with {self.waiting_for} message(s) unanswered"
        description = f"the server closed the connection {what}"
        if cause:
            description += f" ({cause})"
        return ServerClosedError(description, self.messages, reason)


class SeedClientProtocol(GreetingClientProtocol):
    """
    The tutorial's framing: C{Welcome!} without a line ending, then one
    message sent at a time, each followed by its reply before the next
    (the server treats each read as one message, so messages must not be
    pipelined).

    Replies are recognised by their content, not by how TCP cut the stream:
    a reply split over several reads, or joined to the next, is still one
    message.  Bytes that are not the expected reply are one message per
    read (the tutorial's rule), except an C{error: ...} line, which is kept
    whole.
    """

    framing = "seed"
    exit_bytes = EXIT

    def check_message(self, message: bytes) -> None:
        if not message:
            raise ValueError("the seed framing cannot send an empty message")
        super().check_message(message)

    def _send_unsent(self) -> None:
        if self._outstanding or not self._unsent:
            return
        message = self._last_sent = self._unsent.popleft()
        self._outstanding.extend(reply(part) + ending for part, ending in split_seed_read(message))
        self.transport.write(message)  # type: ignore[union-attr]

    _last_sent = b""
    _stray_line_ending = False

    def _awaited(self) -> bytes:
        return self._last_sent

    def _framing_hint(self) -> str:
        if self._stray_line_ending:
            return " (the greeting ended with a line ending: is the server's framing 'line'?)"
        return ""

    def _expected(self) -> bytes | None:
        if not self._greeted:
            return GREETING
        return self._outstanding[0] if self._outstanding else None

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while self._buffer and not self._lost:
            buffer = self._buffer
            expected = self._expected()
            if expected is not None and buffer.startswith(expected):
                self._buffer = buffer[len(expected) :]
                self._received(expected)
                continue
            if expected is not None and expected.startswith(buffer):
                return
            if buffer.startswith((LINE_END, b"\n")):
                # No seed message starts with a line ending: a line server's.
                self._stray_line_ending = True
                self._buffer = buffer[2 if buffer.startswith(LINE_END) else 1 :]
                continue
            if buffer == b"\r":
                return
            if buffer.startswith(ERROR_PREFIX) or ERROR_PREFIX.startswith(buffer):
                line_end = buffer.find(b"\n")
                if line_end < 0:
                    if len(buffer) > self.max_buffer:
                        self._overflow()
                    return
                self._buffer = buffer[line_end + 1 :]
                self._received(split_line_ending(buffer[: line_end + 1])[0])
                continue
            self._buffer = b""
            self._received(buffer)


class LineClientProtocol(GreetingClientProtocol):
    """
    The C{line} framing: C{Welcome!\\r\\n}, then messages sent as lines
    without waiting (pipelined), replies read as lines; messages are handed
    over without their line ending.
    """

    framing = "line"
    exit_bytes = EXIT + LINE_END

    def check_message(self, message: bytes) -> None:
        if b"\n" in message or message.endswith(b"\r"):
            raise ValueError("a message of the line framing cannot contain a line ending")
        super().check_message(message)

    def _send_unsent(self) -> None:
        if not self._unsent:
            return
        messages = list(self._unsent)
        self._unsent.clear()
        self._outstanding.extend(messages)
        self.transport.write(b"".join(message + LINE_END for message in messages))  # type: ignore[union-attr]

    def _seed_greeting_seen(self) -> bool:
        return not self._greeted and self._buffer.startswith(GREETING)

    def _waiting_for_greeting(self) -> str:
        if self._seed_greeting_seen():
            return "the greeting's line ending"
        return "the greeting"

    def _framing_hint(self) -> str:
        if self._seed_greeting_seen():
            return " (is the server's framing 'seed'?)"
        return ""

    def dataReceived(self, data: bytes) -> None:
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if self._lost:
                return
            self._received(line[:-1] if line.endswith(b"\r") else line)
        if len(self._buffer) > self.max_buffer:
            self._overflow()


FRAMINGS: dict[Framing, type[GreetingClientProtocol]] = {
    "seed": SeedClientProtocol,
    "line": LineClientProtocol,
}
"""The client side of each framing, by its command-line name."""


def client_protocol(
    framing: Framing,
    clock: IReactorTime,
    timeout: float = 10.0,
    on_message: MessageCallback | None = None,
) -> GreetingClientProtocol:
    """
    A new, unconnected conversation in C{framing} (C{"seed"} or C{"line"}).

    @raise ValueError: for an unknown framing.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}: choose {FRAMING_CHOICES}")
    return FRAMINGS[framing](clock, timeout, on_message)


def connect_greeting(
    reactor: IReactorTime,
    endpoint: IStreamClientEndpoint,
    protocol: GreetingClientProtocol,
    timeout: float = 10.0,
) -> Deferred[GreetingClientProtocol]:
    """
    Connect C{protocol} (from L{client_protocol}) within C{timeout}
    seconds; then feed it with L{GreetingClientProtocol.send} and
    L{GreetingClientProtocol.finish} and wait for its C{done}.

    @return: fires with C{protocol} once connected; fails with the
        connection error, or C{TimeoutError} when the timeout passes first.
    """
    connecting: Deferred[GreetingClientProtocol] = connectProtocol(endpoint, protocol)
    if timeout:
        connecting.addTimeout(timeout, reactor)
    return connecting


def greet(
    reactor: IReactorTime,
    endpoint: IStreamClientEndpoint,
    names: Sequence[bytes],
    framing: Framing = "seed",
    *,
    timeout: float = 10.0,
    on_message: MessageCallback | None = None,
) -> Deferred[list[bytes]]:
    """
    Have one conversation with a greeting server: receive its greeting, send
    every name (one at a time in the C{seed} framing, all at once in
    C{line}), receive each reply, send C{exit}, wait for the close.

    @param endpoint: where the server is, e.g.
        C{clientFromString(reactor, "tcp:127.0.0.1:9999")}.
    @param timeout: seconds allowed to connect, and for the server to send
        each message it owes (C{0}: no limit).
    @param on_message: called with each message as soon as it is complete.
    @return: fires with everything the server said (greeting first, then
        the replies), each message separately; fails with a
        L{ConversationError} or the connection's error.
    @raise ValueError: for an unknown framing or a name the framing cannot
        send (empty in C{seed}, a line ending in C{line}, C{exit}).
    @raise TypeError: when C{names} are not C{bytes} (C{"names must be bytes,
        not str"}): like the C{ValueError}s, raised at once, before any
        connection, as these are mistakes of the calling program, not
        failures of the conversation.
    """
    names = checked_names(names)
    protocol = client_protocol(framing, reactor, timeout, on_message)
    for name in names:
        protocol.check_message(name)

    def converse(connected: GreetingClientProtocol) -> Deferred[list[bytes]]:
        for name in names:
            connected.send(name)
        connected.finish()
        return connected.done

    return connect_greeting(reactor, endpoint, protocol, timeout).addCallback(converse)
