"""
The greeting protocol itself, as pure functions over bytes.

Nothing here imports Twisted: these functions are the single source of truth
for what the server says, shared by the TCP framings, the UDP protocol, the
clients and the tests' reference model.

Bytes are never decoded: a message is whatever bytes the peer sent, and it is
echoed back inside the reply untouched (invalid UTF-8 and NUL included).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "CARRIAGE_RETURN",
    "EXIT",
    "FRAMINGS_DESCRIBED",
    "FRAMING_CHOICES",
    "FRAMING_NAMES",
    "GREETING",
    "LINE_END",
    "LINE_FEED",
    "LOOP_FIRST_BYTES",
    "REPLY_OVERHEAD",
    "REPLY_PREFIX",
    "REPLY_SUFFIX",
    "REPLY_TEMPLATE",
    "Framing",
    "error_line",
    "is_error",
    "is_exit",
    "is_reply",
    "reply",
    "split_line_ending",
    "split_seed_read",
]

Framing = Literal["seed", "line"]
"""The name of a TCP framing, as on the command line: the one list of them."""

FRAMING_NAMES: Final[tuple[Framing, ...]] = get_args(Framing)
"""Every framing's name, in the order the help texts list them."""

FRAMING_CHOICES: Final = " or ".join(FRAMING_NAMES)
"""The names as a user reads them in an error (C{seed or line})."""

FRAMINGS_DESCRIBED: Final[dict[Framing, str]] = {
    "seed": "the tutorial's, byte for byte: each read is a message",
    "line": "CRLF lines, buffered until complete, for programs that pipeline",
}
"""What each framing means, in a few words for help texts."""

GREETING: Final = b"Welcome!"
"""What the tutorial's server sends first, with no line ending."""

EXIT: Final = b"exit"
"""The message that ends a session."""

LINE_END: Final = b"\r\n"
"""The line ending of the C{line} framing's greeting, replies and errors."""

LINE_FEED: Final = 0x0A
"""The byte C{\\n}, as an integer: C{LINE_FEED in data} looks for it with one
C{memchr}, while C{b"\\n" in data} first builds and discards a C{TypeError}
(see docs/PERFORMANCE.md, section "The protocols")."""

CARRIAGE_RETURN: Final = 0x0D
"""The byte C{\\r}, as an integer (see L{LINE_FEED})."""

REPLY_PREFIX: Final = b"Hello, "
REPLY_SUFFIX: Final = b"!"
REPLY_TEMPLATE: Final = REPLY_PREFIX + b"%s" + REPLY_SUFFIX
"""C{REPLY_TEMPLATE % message} is L{reply}: one formatting step, cheaper
than two concatenations."""
REPLY_OVERHEAD: Final = len(REPLY_PREFIX) + len(REPLY_SUFFIX)
"""How many bytes longer a reply is than its message."""
ERROR_PREFIX: Final = b"error: "

LOOP_FIRST_BYTES: Final = frozenset({REPLY_PREFIX[0], ERROR_PREFIX[0]})
"""The first bytes of every datagram L{is_reply} or L{is_error} is true
for: a datagram starting with any other byte is neither, told with one
test."""


def reply(message: bytes) -> bytes:
    """
    The answer to one message: C{Hello, M!}, without any line ending.
    """
    return REPLY_TEMPLATE % message


def split_line_ending(chunk: bytes) -> tuple[bytes, bytes]:
    """
    Split one message from the line ending it arrived with.

    @return: C{(message, ending)} where C{ending} is C{b"\\r\\n"}, C{b"\\n"}
        or C{b""}.
    """
    if chunk.endswith(b"\n"):
        if chunk.endswith(b"\r\n"):
            return chunk[:-2], b"\r\n"
        return chunk[:-1], b"\n"
    return chunk, b""


def split_seed_read(data: bytes) -> list[tuple[bytes, bytes]]:
    """
    Cut one read of the C{seed} framing into messages.

    A read without a line feed is one message (the tutorial's rule: one
    C{recv} is one message).  A read that holds line feeds is cut after each
    one; every line is its own message and keeps its ending (C{\\n} or
    C{\\r\\n}); bytes after the last line feed are one more message, without
    an ending.

    @return: C{(message, ending)} pairs in arrival order.
    """
    if LINE_FEED not in data:
        return [(data, b"")]
    pieces = data.split(b"\n")
    tail = pieces.pop()
    messages: list[tuple[bytes, bytes]] = []
    for piece in pieces:
        if piece.endswith(b"\r"):
            messages.append((piece[:-1], b"\r\n"))
        else:
            messages.append((piece, b"\n"))
    if tail:
        messages.append((tail, b""))
    return messages


def is_exit(message: bytes) -> bool:
    """
    Whether C{message} (already without its line ending) ends the session.
    """
    return message == EXIT


def is_reply(datagram: bytes) -> bool:
    """
    Whether C{datagram} looks like a reply of this protocol (C{Hello, ...!},
    with or without a line ending).

    A server must never answer a reply: two servers pointed at each other
    would otherwise echo one forged datagram back and forth for ever (the
    "Loop DoS" class of attack, CVE-2024-2169).
    """
    message, _ = split_line_ending(datagram)
    return message.startswith(REPLY_PREFIX) and message.endswith(REPLY_SUFFIX)


def is_error(datagram: bytes) -> bool:
    """
    Whether C{datagram} is an error message of this protocol; those are never
    answered either, for the same reason as L{is_reply}.
    """
    return datagram.startswith(ERROR_PREFIX)


def error_line(reason: str) -> bytes:
    """
    A one-line, human-readable error, as sent before a refusal or close.

    @param reason: plain ASCII text chosen by the server, never peer input.
    """
    return ERROR_PREFIX + reason.encode("ascii") + LINE_END
