"""
The seed protocol's answer to one read, shared by the Python benchmark peers.

Kept apart from C{twisted_net.hello} on purpose: the peers are independent
implementations of the same protocol, not the code under test.
"""

from __future__ import annotations

GREETING = b"Welcome!"


def answer(data: bytes) -> tuple[bytes, bool]:
    """
    Reply to one read: a read is one message, or one message per line when it
    holds line feeds (each reply keeps its line's ending); C{exit} ends the
    session after the replies before it.

    @return: C{(replies, close)}.
    """
    if b"\n" not in data:
        if data == b"exit":
            return b"", True
        return b"Hello, " + data + b"!", False
    out: list[bytes] = []
    pieces = data.split(b"\n")
    tail = pieces.pop()
    for piece in pieces:
        ending = b"\n"
        if piece.endswith(b"\r"):
            piece, ending = piece[:-1], b"\r\n"
        if piece == b"exit":
            return b"".join(out), True
        out.append(b"Hello, " + piece + b"!" + ending)
    if tail:
        if tail == b"exit":
            return b"".join(out), True
        out.append(b"Hello, " + tail + b"!")
    return b"".join(out), False


def datagram_reply(data: bytes) -> bytes:
    """
    Reply to one datagram: C{Hello, M!}, a trailing line ending after the C{!}.
    """
    ending = b""
    if data.endswith(b"\r\n"):
        data, ending = data[:-2], b"\r\n"
    elif data.endswith(b"\n"):
        data, ending = data[:-1], b"\n"
    return b"Hello, " + data + b"!" + ending


def raise_nofile() -> None:
    """
    Raise the soft limit of open files to the hard one (10,000 connections).
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
