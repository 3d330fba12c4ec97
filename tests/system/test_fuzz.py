"""
Random bytes in random splits, fed to both TCP framings and compared with a
simple model of the protocol written from its description (not from the
code): in memory with hypothesis and a seeded fuzzer, and over real sockets
against the installed C{twist net}.

No input may raise out of a protocol callback: the in-memory tests call
C{dataReceived} directly, so any exception fails them.
"""

from __future__ import annotations

import itertools
import random
import socket
import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hardening_tcp import LISTEN, connect, read_until_closed
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from twisted_net.config import ServerConfig
from twisted_net.server.factory import GreetingFactory

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
LIMIT = 8

# The model -------------------------------------------------------------------


def _answer(message: bytes, ending: bytes, limit: int) -> tuple[bytes, bool]:
    """
    One message's output and whether the session ends after it.
    """
    if message == b"exit":
        return b"", True
    if len(message) > limit:
        return b"error: message longer than %d bytes\r\n" % limit, True
    return b"Hello, " + message + b"!" + ending, False


def model_line(stream: bytes, limit: int, half_close: bool) -> tuple[bytes, bool]:
    """
    What a C{line} server sends for C{stream} however it is split: a
    greeting line, then one reply per line (a C{\\r} before the C{\\n} is
    not part of the message); C{exit} or an over-long line (complete or
    not) ends the session.  At a half-close a last line without line feed
    is answered too.

    @return: the bytes sent and whether the server closed.
    """
    out = b"Welcome!\r\n"
    *lines, rest = stream.split(b"\n")
    for line in lines:
        message = line[:-1] if line.endswith(b"\r") else line
        answer, closed = _answer(message, b"\r\n", limit)
        out += answer
        if closed:
            return out, True
    if len(rest) > limit + 1:
        return out + b"error: message longer than %d bytes\r\n" % limit, True
    if half_close:
        if rest:
            message = rest[:-1] if rest.endswith(b"\r") else rest
            out += _answer(message, b"\r\n", limit)[0]
        return out, True
    return out, False


def model_seed(reads: list[bytes], limit: int) -> tuple[bytes, bool]:
    """
    What a C{seed} server sends for these reads: C{Welcome!}, then for each
    read, each of its lines (or the whole read, if it has no line feed) is a
    message answered with its own line ending.
    """
    out = b"Welcome!"
    for data in reads:
        if not data:
            continue
        pieces = data.split(b"\n")
        messages = [(p[:-1], b"\r\n") if p.endswith(b"\r") else (p, b"\n") for p in pieces[:-1]]
        if pieces[-1] or len(pieces) == 1:
            messages.append((pieces[-1], b""))
        for message, ending in messages:
            answer, closed = _answer(message, ending, limit)
            out += answer
            if closed:
                return out, True
    return out, False


# The server in memory ----------------------------------------------------------


def run_in_memory(
    framing: str, reads: list[bytes], limit: int, half_close: bool = False
) -> tuple[bytes, bool]:
    """
    Feed C{reads} to one session of a real L{GreetingFactory} on a
    L{StringTransport}; return what it wrote and whether it closed.
    """
    factory = GreetingFactory(framing, ServerConfig(max_message=limit), clock=Clock())
    protocol = factory.buildProtocol(PEER)
    assert protocol is not None
    transport = StringTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    for data in reads:
        if transport.disconnecting:
            break
        if data:  # a transport never delivers an empty read
            protocol.dataReceived(data)
    if half_close and not transport.disconnecting:
        protocol.readConnectionLost()  # type: ignore[attr-defined]
    return transport.value(), transport.disconnecting


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    return [stream[a:b] for a, b in itertools.pairwise(points)]


_PIECES = st.one_of(
    st.sampled_from(
        [
            b"\n",
            b"\r\n",
            b"\r",
            b"exit",
            b"\xff",
            b"\x00",
            b"Hello, ",
            b"!",
            b"error: ",
            b"abcdefghi",
        ]
    ),
    st.binary(max_size=12),
)
STREAMS = st.lists(_PIECES, max_size=30).map(b"".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=STREAMS, cuts=st.lists(st.integers(min_value=0), max_size=12), half_close=st.booleans()
)
def test_line_framing_any_chunking_matches_the_model(
    stream: bytes, cuts: list[int], half_close: bool
) -> None:
    """
    In C{line} framing the replies depend only on the bytes, never on how
    they were split into reads.
    """
    reads = split_at(stream, cuts)
    assert run_in_memory("line", reads, LIMIT, half_close) == model_line(stream, LIMIT, half_close)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(reads=st.lists(STREAMS, max_size=8))
def test_seed_framing_matches_the_model_read_by_read(reads: list[bytes]) -> None:
    """
    In C{seed} framing every read is a message (or one per line), as the
    tutorial's C{recv} loop does.
    """
    assert run_in_memory("seed", reads, LIMIT) == model_seed(reads, LIMIT)


def _random_stream(rng: random.Random, size: int) -> bytes:
    alphabet = [b"\n", b"\r", b"exit", b"Hello, x!"]
    parts = []
    length = 0
    while length < size:
        part = rng.choice(alphabet) if rng.random() < 0.15 else rng.randbytes(rng.randint(0, 10))
        parts.append(part)
        length += len(part)
    return b"".join(parts)


def test_seeded_fuzz_both_framings() -> None:
    """
    3,000 random byte streams (any byte value) in random splits, through
    both framings, against the model.
    """
    rng = random.Random(20240225)
    for _ in range(1500):
        stream = _random_stream(rng, rng.randint(0, 200))
        reads = split_at(stream, [rng.randint(0, 1 << 16) for _ in range(rng.randint(0, 20))])
        half_close = rng.random() < 0.5
        assert run_in_memory("line", reads, LIMIT, half_close) == model_line(
            stream, LIMIT, half_close
        ), (reads, half_close)
        assert run_in_memory("seed", reads, LIMIT) == model_seed(reads, LIMIT), reads


# Over real sockets -------------------------------------------------------------


def test_random_bytes_over_real_sockets_match_the_model(twist_net: Any) -> None:
    """
    60 concurrent sessions against the installed server in C{line}
    framing, each a random byte stream (up to 40 KB, every byte value,
    some lines over the limit) sent in random pieces and ended by a
    half-close: each session receives exactly what the model says.
    """
    limit = 64
    server = twist_net(
        [*LISTEN, "--framing", "line", "--max-message", str(limit), "--max-per-peer", "0"]
    )
    rng = random.Random(7)
    sessions = []
    for _ in range(60):
        stream = _random_stream(rng, rng.randint(0, 40000)).replace(b"exit", b"exi")
        if rng.random() < 0.7:
            stream = b"".join(line[:limit] + b"\n" for line in stream.split(b"\n"))
        sessions.append(
            (stream, split_at(stream, [rng.randint(0, 1 << 20) for _ in range(rng.randint(0, 40))]))
        )
    results: list[Any] = [None] * len(sessions)

    def run(index: int) -> None:
        reads = sessions[index][1]
        with connect(server.tcp_port, timeout=20) as sock:
            reader_out: list[Any] = []
            reader = threading.Thread(target=lambda: reader_out.append(read_until_closed(sock, 20)))
            reader.start()
            try:
                for data in reads:
                    sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            reader.join(25)
        results[index] = reader_out[0] if reader_out else None

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for (stream, _), result in zip(sessions, results, strict=True):
        expected, _ = model_line(stream, limit, half_close=True)
        assert result is not None
        received, ended = result
        assert received == expected
        assert ended in ("eof", "reset")
