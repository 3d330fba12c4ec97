"""
What the greeting clients report: the errors of a conversation that did not
complete, peer bytes and TLS failures made printable for them, and the
check that names are C{bytes}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.python.failure import Failure

__all__ = [
    "TLS_FAILURES",
    "ConversationError",
    "MessageCallback",
    "ReplyTimeoutError",
    "ServerClosedError",
    "ServerRefusedError",
    "TLSError",
    "checked_names",
    "describe_tls_error",
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


_TLS_HINTS = {
    "certificate verify failed": "the server's certificate is not signed by an authority "
    "this client trusts",
    "wrong version number": "is the server speaking TLS on that port?",
    "packet length too long": "is the server speaking TLS on that port?",
}


TLS_FAILURES = (SSL.Error, VerificationError)
"""What a failed TLS connection reports: OpenSSL's errors, and
C{service_identity}'s when the certificate is not for the host name."""


def describe_tls_error(error: BaseException | None) -> str:
    """
    The reasons of an OpenSSL error (C{OpenSSL.SSL.Error}, whose argument
    is a list of C{(library, function, reason)} tuples) as one short phrase,
    e.g. C{certificate verify failed}, instead of the raw tuples; with a hint
    for the common mistakes.  A C{service_identity} verification error (the
    certificate is for another host) gets a phrase of its own.
    """
    if error is None:
        return "unknown failure"
    if isinstance(error, VerificationError):
        return "the server's certificate is not for this host name"
    entries = error.args[0] if error.args and isinstance(error.args[0], list) else []
    reasons = [str(entry[-1]) for entry in entries if isinstance(entry, tuple) and entry]
    text = ", ".join(reason for reason in reasons if reason) or str(error) or type(error).__name__
    hints = {_TLS_HINTS[reason] for reason in reasons if reason in _TLS_HINTS}
    return f"{text} ({'; '.join(sorted(hints))})" if hints else text


def checked_names(names: Iterable[bytes]) -> list[bytes]:
    """
    The messages a client was asked to send, as a list, checked to be
    C{bytes}: peer bytes are never encoded or decoded here, so text must be
    encoded by the caller (C{"Ana".encode()}).

    @raise TypeError: for a single C{bytes} or C{str} instead of a sequence
        of them, or for any name that is not C{bytes}.
    """
    if isinstance(names, (bytes, str, bytearray, memoryview)):
        raise TypeError(
            f"names must be a sequence of bytes (e.g. [b'Ana']), not one {type(names).__name__}"
        )
    checked = list(names)
    for name in checked:
        if not isinstance(name, bytes):
            raise TypeError(f"names must be bytes, not {type(name).__name__}: {name!r}")
    return checked


class ConversationError(Exception):
    """
    A conversation did not complete.

    @ivar messages: everything the server said before it went wrong.
    @ivar problems: what went wrong, one error per failed message when a
        conversation carries on past a failure (UDP: one per unanswered
        name); C{[self]} otherwise.
    """

    def __init__(self, description: str, messages: Sequence[bytes] = ()) -> None:
        super().__init__(description)
        self.messages = list(messages)
        self.problems: list[ConversationError] = [self]


class ServerClosedError(ConversationError):
    """
    The server closed the connection before it answered every message.

    @ivar reason: why the connection closed, as Twisted reported it.
    """

    def __init__(self, description: str, messages: Sequence[bytes], reason: Failure) -> None:
        super().__init__(description, messages)
        self.reason = reason


class TLSError(ConversationError):
    """
    The TLS handshake or session failed: the client rejected the server's
    certificate, or the server does not speak TLS.

    @ivar reason: the connection's failure, holding the C{OpenSSL.SSL.Error}.
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
