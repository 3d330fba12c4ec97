"""
One TCP conversation with a greeting server, whatever its framing: wait
for the greeting, send the queued messages, collect every reply, send
C{exit} and wait for the close; the timeout and the errors of each way it
can go wrong.  L{twisted_net.client.framings} holds the framings.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
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
    describe_tls_error,
    show_bytes,
)
from twisted_net.hello import EXIT, is_error, is_exit, split_line_ending, split_seed_read

__all__ = ["GreetingClientProtocol"]


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
