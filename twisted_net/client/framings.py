"""
The client side of each TCP framing (C{seed}, the tutorial's; C{line},
pipelined CRLF lines), and L{FRAMINGS}, their registry by command-line name.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

from twisted_net.client.conversation import GreetingClientProtocol
from twisted_net.client.errors import MessageCallback
from twisted_net.hello import (
    ERROR_PREFIX,
    EXIT,
    FRAMING_CHOICES,
    GREETING,
    LINE_END,
    Framing,
    reply,
    split_line_ending,
    split_seed_read,
)

__all__ = ["FRAMINGS", "Framing", "LineClientProtocol", "SeedClientProtocol", "client_protocol"]


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
