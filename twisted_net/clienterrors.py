"""
What the greeting clients report: the errors of a conversation that did not
complete, and peer bytes made printable for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.python.failure import Failure

__all__ = [
    "ConversationError",
    "MessageCallback",
    "ReplyTimeoutError",
    "ServerClosedError",
    "ServerRefusedError",
    "show_bytes",
]

MessageCallback = Callable[[bytes], None]
"""Called with each message the server sends, as soon as it is complete."""


def show_bytes(data: bytes) -> str:
    """
    Peer bytes made printable for an error message, without decoding them as
    text: ASCII stays, everything else is escaped (C{\\xff}, C{\\r}).
    """
    return repr(data)[2:-1]


class ConversationError(Exception):
    """
    A conversation did not complete.

    @ivar messages: everything the server said before it went wrong.
    """

    def __init__(self, description: str, messages: Sequence[bytes] = ()) -> None:
        super().__init__(description)
        self.messages = list(messages)


class ServerClosedError(ConversationError):
    """
    The server closed the connection before it answered every message.

    @ivar reason: why the connection closed, as Twisted reported it.
    """

    def __init__(self, description: str, messages: Sequence[bytes], reason: Failure) -> None:
        super().__init__(description, messages)
        self.reason = reason


class ReplyTimeoutError(ConversationError):
    """
    The server did not say what was expected within the timeout.
    """


class ServerRefusedError(ConversationError):
    """
    The server answered with an error (C{error: ...}) instead of a reply.
    """
