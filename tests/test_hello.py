"""
Tests for L{twisted_net.hello}: the protocol as pure functions over bytes.
"""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twisted_net.hello import (
    FRAMING_CHOICES,
    FRAMING_NAMES,
    FRAMINGS_DESCRIBED,
    GREETING,
    LOOP_FIRST_BYTES,
    Framing,
    error_line,
    is_error,
    is_exit,
    is_reply,
    reply,
    split_line_ending,
    split_seed_read,
)


def test_greeting_is_the_tutorials() -> None:
    """
    The greeting is the tutorial's C{Welcome!}, with no line ending.
    """
    assert GREETING == b"Welcome!"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"Michael", b"Hello, Michael!"),
        (b"", b"Hello, !"),
        (b"\xff\xfe\x00bytes", b"Hello, \xff\xfe\x00bytes!"),
        ("Zoë".encode(), "Hello, Zoë!".encode()),
    ],
)
def test_reply(message: bytes, expected: bytes) -> None:
    """
    C{reply} wraps the message's bytes, untouched, in C{Hello, ...!}.
    """
    assert reply(message) == expected


@given(st.binary())
def test_reply_never_decodes(message: bytes) -> None:
    """
    Any bytes at all are echoed inside the reply.
    """
    assert reply(message) == b"Hello, " + message + b"!"


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        (b"Michael\n", (b"Michael", b"\n")),
        (b"Michael\r\n", (b"Michael", b"\r\n")),
        (b"Michael", (b"Michael", b"")),
        (b"Michael\r", (b"Michael\r", b"")),
        (b"\n", (b"", b"\n")),
        (b"", (b"", b"")),
    ],
)
def test_split_line_ending(chunk: bytes, expected: tuple[bytes, bytes]) -> None:
    """
    Only a final C{\\n} or C{\\r\\n} counts as a line ending; a lone C{\\r}
    is part of the message.
    """
    assert split_line_ending(chunk) == expected


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (b"Michael", [(b"Michael", b"")]),
        (b"Michael\n", [(b"Michael", b"\n")]),
        (b"Michael\r\n", [(b"Michael", b"\r\n")]),
        (
            b"Michael\nTracy\r\nSarah",
            [(b"Michael", b"\n"), (b"Tracy", b"\r\n"), (b"Sarah", b"")],
        ),
        (b"\n\n", [(b"", b"\n"), (b"", b"\n")]),
        (b"a\rb\n", [(b"a\rb", b"\n")]),
    ],
)
def test_split_seed_read(read: bytes, expected: list[tuple[bytes, bytes]]) -> None:
    """
    A read without a line feed is one message; a read with line feeds is one
    message per line, each keeping its ending, plus the unterminated rest.
    """
    assert split_seed_read(read) == expected


@given(st.binary(min_size=1))
def test_split_seed_read_loses_no_byte(read: bytes) -> None:
    """
    Messages and endings put back together are the read, byte for byte; no
    message holds a line feed, and only the last may lack an ending.
    """
    pieces = split_seed_read(read)
    assert b"".join(message + ending for message, ending in pieces) == read
    for message, ending in pieces:
        assert b"\n" not in message
        assert ending in (b"", b"\n", b"\r\n")
    assert all(ending for _, ending in pieces[:-1])


@pytest.mark.parametrize(
    ("message", "expected"),
    [(b"exit", True), (b"Exit", False), (b"exit ", False), (b" exit", False), (b"", False)],
)
def test_is_exit(message: bytes, expected: bool) -> None:
    """
    Only the exact message C{exit} ends a session.
    """
    assert is_exit(message) is expected


@pytest.mark.parametrize(
    ("datagram", "expected"),
    [
        (b"Hello, Michael!", True),
        (b"Hello, Michael!\n", True),
        (b"Hello, Michael!\r\n", True),
        (b"Hello, !", True),
        (b"Hello, Michael", False),
        (b"Michael!", False),
        (b"hello, Michael!", False),
    ],
)
def test_is_reply(datagram: bytes, expected: bool) -> None:
    """
    A reply of this protocol is recognised with or without its line ending.
    """
    assert is_reply(datagram) is expected


@given(st.binary())
def test_every_reply_is_recognised(message: bytes) -> None:
    """
    Whatever the message, its reply (with any line ending) is a reply, so the
    UDP side can never be made to answer itself.
    """
    for ending in (b"", b"\n", b"\r\n"):
        assert is_reply(reply(message) + ending)


def test_error_line() -> None:
    """
    An error is one CRLF-terminated line starting C{error: }, recognised by
    C{is_error}.
    """
    line = error_line("message longer than 5 bytes")
    assert line == b"error: message longer than 5 bytes\r\n"
    assert is_error(line)
    assert not is_error(b"Hello, error: x!")


def test_the_framing_names_are_one_list() -> None:
    """
    The framing names come from the C{Framing} type; each is described, and
    the error choices name them all.
    """
    assert get_args(Framing) == FRAMING_NAMES == ("seed", "line")
    assert tuple(FRAMINGS_DESCRIBED) == FRAMING_NAMES
    assert all(FRAMINGS_DESCRIBED.values())
    assert FRAMING_CHOICES == "seed or line"


@given(st.binary(max_size=30))
def test_loop_first_bytes_cover_every_reply_and_error(datagram: bytes) -> None:
    """
    A datagram that does not start with one of L{LOOP_FIRST_BYTES} is
    neither a reply nor an error (the UDP shortcut relies on it).
    """
    if not datagram or datagram[0] not in LOOP_FIRST_BYTES:
        assert not is_reply(datagram) and not is_error(datagram)
    assert is_reply(reply(datagram)) and reply(datagram)[0] in LOOP_FIRST_BYTES
