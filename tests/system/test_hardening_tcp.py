"""
Hostile TCP peers against the installed C{twist net}: any bytes, over-long
lines, idle and dripping clients, peers that never read, half-close,
connection caps, churn with resets, and a process out of descriptors.

Every test drives real loopback sockets against the real program and checks
what a peer sees, plus what the server's C{/proc} entry and log say.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import struct
import time
from typing import Any

import pytest
from support import RunningServer

LOOPBACK = "127.0.0.1"
LISTEN = ["--listen", f"tcp:0:interface={LOOPBACK}", "--udp", f"{LOOPBACK}:0"]
BUSY = b"error: server busy\r\n"

# Helpers shared by the other test_hardening modules ----------------------


def rss_bytes(pid: int) -> int:
    """
    Resident set size of process C{pid}, from C{/proc}.
    """
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    """
    How many file descriptors process C{pid} has open.
    """
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    """
    User plus system CPU time used by process C{pid}.
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect(port: int, source: str | None = None, timeout: float = 5.0) -> socket.socket:
    """
    A TCP connection to C{LOOPBACK:port}, optionally from another loopback
    address.
    """
    return socket.create_connection(
        (LOOPBACK, port),
        timeout=timeout,
        source_address=(source, 0) if source else None,
    )


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, str]:
    """
    Everything the server sends until it closes; and how it closed
    (C{"eof"}, C{"reset"} or C{"timeout"}).
    """
    sock.settimeout(timeout)
    received = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received), "reset"
        except TimeoutError:
            break
        if not chunk:
            return bytes(received), "eof"
        received += chunk
    return bytes(received), "timeout"


def read_exactly(sock: socket.socket, size: int, timeout: float = 10.0) -> bytes:
    """
    Read C{size} bytes (fewer only if the server closes first).
    """
    sock.settimeout(timeout)
    received = bytearray()
    while len(received) < size:
        chunk = sock.recv(size - len(received))
        if not chunk:
            break
        received += chunk
    return bytes(received)


def reset(sock: socket.socket) -> None:
    """
    Close with C{SO_LINGER} 0: the peer gets a TCP reset, not a FIN.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


_EXPECTED_WARNINGS = {"refused"}


def unexpected_events(server: RunningServer) -> list[Any]:
    """
    Log events a healthy server under attack should never write: failures,
    tracebacks, errors, warnings other than counted refusals, and anything
    on stderr or outside the JSON log.
    """
    bad: list[Any] = []
    for event in list(server.events):
        level = (event.get("log_level") or {}).get("name")
        failed = "log_failure" in event or event.get("isError")
        unexpected_warning = level == "warn" and event.get("event") not in _EXPECTED_WARNINGS
        if failed or level in ("error", "critical") or unexpected_warning:
            bad.append(event)
    bad.extend(line for line in server.raw_lines if line and not line.startswith("{"))
    bad.extend(line for line in server.stderr_lines if line)
    return bad


def refusals_logged(server: RunningServer, reason: str) -> list[dict[str, Any]]:
    """
    The C{refused} log events for C{reason}.
    """
    return [
        e for e in list(server.events) if e.get("event") == "refused" and e.get("reason") == reason
    ]


def final_counters(server: RunningServer) -> dict[str, Any]:
    """
    Stop the server (SIGTERM) and return the counters it logs when stopped.
    """
    code = server.stop()
    assert code in (0, -15), code
    event = server.wait_for(lambda e: e.get("event") == "stopped", timeout=5)
    counters: dict[str, Any] = event["counters"]
    return counters


# 1. Any bytes -------------------------------------------------------------

HOSTILE = [
    b"\xff\xfe\x00abc",
    b"\x00",
    b"\xc3(",
    b"caf\xc3\xa9",
    b"\x80" * 30,
    b"\x1b[2J\x07",
    b"exit\x00",
    b" exit",
]


@pytest.mark.parametrize("framing", ["seed", "line"])
def test_any_bytes_are_echoed_and_the_connection_stays(twist_net: Any, framing: str) -> None:
    """
    Invalid UTF-8, NUL, C{\\xff} and escape sequences come back inside the
    reply, byte for byte, and the session goes on; nothing is logged as an
    error.
    """
    server = twist_net([*LISTEN, "--framing", framing])
    ending = b"\r\n" if framing == "line" else b""
    with connect(server.tcp_port) as sock:
        assert read_exactly(sock, len(b"Welcome!" + ending)) == b"Welcome!" + ending
        for message in HOSTILE:
            sock.sendall(message + ending)
            expected = b"Hello, " + message + b"!" + ending
            assert read_exactly(sock, len(expected)) == expected
        sock.sendall(b"exit" + ending)
        assert read_until_closed(sock) == (b"", "eof")
    assert unexpected_events(server) == []


# 2. Over-long messages ----------------------------------------------------


def _push_without_reading(
    sock: socket.socket, total: int, chunk: bytes, seconds: float, on_tick: Any = None
) -> tuple[int, bytes, str]:
    """
    Send up to C{total} bytes as fast as the socket takes them, collecting
    what the server says, until it closes, C{total} is sent, or C{seconds}
    pass.  C{on_tick} is called between sends.

    @return: bytes sent, bytes received, and how the exchange ended
        (C{"eof"}, C{"reset"}, C{"sent"}, C{"blocked"} or C{"timeout"}).
    """
    sock.setblocking(False)
    sent = 0
    received = bytearray()
    deadline = time.monotonic() + seconds
    blocked_since: float | None = None
    while time.monotonic() < deadline:
        if on_tick is not None:
            on_tick()
        readable, writable, _ = select.select([sock], [sock] if sent < total else [], [], 0.05)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                return sent, bytes(received), "reset"
            if not data:
                return sent, bytes(received), "eof"
            received += data
        if sent >= total:
            return sent, bytes(received), "sent"
        if writable:
            blocked_since = None
            try:
                sent += sock.send(chunk[: total - sent])
            except (BrokenPipeError, ConnectionResetError):
                return sent, bytes(received), "reset"
            except BlockingIOError:
                pass
        elif blocked_since is None:
            blocked_since = time.monotonic()
        elif time.monotonic() - blocked_since > 1.0:
            return sent, bytes(received), "blocked"
    return sent, bytes(received), "timeout"


def test_ten_megabyte_line_gets_an_error_and_a_close(twist_net: Any) -> None:
    """
    A 10 MB line without a line feed: the server answers one error line and
    closes as soon as the line passes C{--max-message}, and its memory does
    not grow with what the peer keeps sending.
    """
    server = twist_net([*LISTEN, "--framing", "line"])
    pid = server.process.pid
    before = rss_bytes(pid)
    peak = [before]

    def sample() -> None:
        peak[0] = max(peak[0], rss_bytes(pid))

    with connect(server.tcp_port) as sock:
        sent, received, ended = _push_without_reading(
            sock, 10 * 1024 * 1024, b"a" * 65536, seconds=20, on_tick=sample
        )
    assert received == b"Welcome!\r\nerror: message longer than 4096 bytes\r\n"
    assert ended in ("eof", "reset")
    assert sent < 10 * 1024 * 1024
    assert peak[0] - before < 5 * 1024 * 1024
    assert final_counters(server)["refusals"]["max-message"] == 1
    assert refusals_logged(server, "max-message")


def test_long_message_under_the_limit_split_in_many_reads(twist_net: Any) -> None:
    """
    A line just under the limit, arriving in many small pieces, is still
    answered (the limit counts the message, not the reads).
    """
    server = twist_net([*LISTEN, "--framing", "line", "--max-message", "100000"])
    message = bytes(range(256)).replace(b"\n", b"") * 390
    with connect(server.tcp_port) as sock:
        read_exactly(sock, 10)
        for start in range(0, len(message), 997):
            sock.sendall(message[start : start + 997])
        sock.sendall(b"\n")
        expected = b"Hello, " + message.rstrip(b"\r") + b"!\r\n"
        assert read_exactly(sock, len(expected)) == expected


# 3. Slow and idle clients ---------------------------------------------------


def test_idle_timeout_closes_a_silent_connection(twist_net: Any) -> None:
    """
    A client that sends nothing gets C{error: idle timeout} and a close
    within about C{--idle-timeout} (the watchdog ticks once a second).
    """
    server = twist_net([*LISTEN, "--framing", "line", "--idle-timeout", "1"])
    with connect(server.tcp_port) as sock:
        started = time.monotonic()
        received, ended = read_until_closed(sock, timeout=6)
        elapsed = time.monotonic() - started
    assert (received, ended) == (b"Welcome!\r\nerror: idle timeout\r\n", "eof")
    assert 0.9 < elapsed < 3.5
    assert final_counters(server)["refusals"]["idle-timeout"] == 1


def test_one_byte_a_second_cannot_hold_a_connection(twist_net: Any) -> None:
    """
    A line framing client that drips a byte every 0.3 s never completes a
    message; the per-message deadline (C{--message-timeout}) closes it even
    though it is never idle.
    """
    server = twist_net(
        [*LISTEN, "--framing", "line", "--message-timeout", "2", "--idle-timeout", "60"]
    )
    with connect(server.tcp_port) as sock:
        assert read_exactly(sock, 10) == b"Welcome!\r\n"
        started = time.monotonic()
        sock.settimeout(0.3)
        received = b""
        while time.monotonic() - started < 8:
            try:
                sock.send(b"x")
                chunk = sock.recv(1024)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        elapsed = time.monotonic() - started
    assert received == b"error: message not completed in time\r\n"
    assert 1.9 < elapsed < 5
    assert final_counters(server)["refusals"]["message-timeout"] == 1


def test_dripping_complete_messages_is_served_in_seed_framing(twist_net: Any) -> None:
    """
    In C{seed} framing every read is a whole message, so a slow client is
    answered byte by byte; it is bounded by the idle timeout and the
    connection caps, not by a message deadline.
    """
    server = twist_net([*LISTEN, "--message-timeout", "1", "--idle-timeout", "2"])
    with connect(server.tcp_port) as sock:
        assert read_exactly(sock, 8) == b"Welcome!"
        for _ in range(5):
            time.sleep(0.6)
            sock.sendall(b"x")
            assert read_exactly(sock, 9) == b"Hello, x!"
        received, ended = read_until_closed(sock, timeout=5)
    assert (received, ended) == (b"error: idle timeout\r\n", "eof")


# 4. Peers that send but never read ----------------------------------------


def test_backpressure_bounds_memory_of_a_peer_that_never_reads(twist_net: Any) -> None:
    """
    A line framing client pushes messages (each reply is 5 times larger)
    and never reads: the server stops reading once its write buffer is full,
    so the client's sends block, and the server grows by less than 10 MB.
    """
    server = twist_net([*LISTEN, "--framing", "line", "--write-timeout", "0"])
    pid = server.process.pid
    with connect(server.tcp_port) as sock:
        read_exactly(sock, 10)
        time.sleep(0.2)
        before = rss_bytes(pid)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sent, _, ended = _push_without_reading(sock, 200 * 1024 * 1024, b"x\n" * 32768, 15)
        grown = rss_bytes(pid) - before
    assert ended == "blocked", (ended, sent)
    assert grown < 10 * 1024 * 1024, grown
    print(f"pushed {sent} bytes before blocking; server RSS grew {grown / 1e6:.1f} MB")


def test_write_timeout_aborts_a_peer_that_never_reads(twist_net: Any) -> None:
    """
    Once the server has stopped reading from a peer whose replies make no
    progress for C{--write-timeout} seconds, it aborts the connection.
    """
    server = twist_net([*LISTEN, "--framing", "line", "--write-timeout", "2"])
    with connect(server.tcp_port) as sock:
        read_exactly(sock, 10)
        started = time.monotonic()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        _, _, ended = _push_without_reading(sock, 200 * 1024 * 1024, b"x\n" * 32768, 15)
        if ended == "blocked":
            _, ended = read_until_closed(sock, timeout=8)
        elapsed = time.monotonic() - started
    assert ended == "reset"
    assert 2 <= elapsed < 6
    assert final_counters(server)["refusals"]["write-timeout"] == 1


def test_delayed_replies_over_the_queue_limit_pause_reading_in_order(twist_net: Any) -> None:
    """
    With C{--delay} and a tiny C{--queue-limit} the server stops reading
    while delayed replies wait, and resumes as they leave: 3,000 pipelined
    messages still get every reply, in order, and the stop comes after
    them.
    """
    server = twist_net([*LISTEN, "--framing", "line", "--delay", "0.2", "--queue-limit", "200"])
    messages = [b"q%d" % i for i in range(3000)]
    with connect(server.tcp_port) as sock:
        sock.sendall(b"".join(m + b"\n" for m in messages))
        sock.shutdown(socket.SHUT_WR)
        received, ended = read_until_closed(sock, timeout=20)
    assert ended == "eof"
    assert received == b"Welcome!\r\n" + b"".join(b"Hello, " + m + b"!\r\n" for m in messages)


# 5. Half-close ------------------------------------------------------------


def test_half_close_gets_every_reply(twist_net: Any) -> None:
    """
    2,000 pipelined lines, then C{shutdown(SHUT_WR)}: all 2,000 replies
    arrive, in order, before the server closes.
    """
    server = twist_net([*LISTEN, "--framing", "line"])
    messages = [b"m%d" % i for i in range(2000)]
    with connect(server.tcp_port) as sock:
        sock.sendall(b"".join(m + b"\n" for m in messages))
        sock.shutdown(socket.SHUT_WR)
        received, ended = read_until_closed(sock)
    expected = b"Welcome!\r\n" + b"".join(b"Hello, " + m + b"!\r\n" for m in messages)
    assert ended == "eof"
    assert received == expected


def test_half_close_answers_a_last_line_without_line_feed(twist_net: Any) -> None:
    """
    The last message before the half-close needs no line feed.
    """
    server = twist_net([*LISTEN, "--framing", "line"])
    with connect(server.tcp_port) as sock:
        sock.sendall(b"one\ntwo")
        sock.shutdown(socket.SHUT_WR)
        assert read_until_closed(sock) == (b"Welcome!\r\nHello, one!\r\nHello, two!\r\n", "eof")


# 6. Connection caps ---------------------------------------------------------


def test_connection_caps_refuse_then_recover(twist_net: Any) -> None:
    """
    C{--max-per-peer 2 --max-connections 3}: a third connection from one
    host and a fourth overall get C{server busy} and a close; the server
    keeps listening, and capacity comes back when a connection leaves.
    """
    server = twist_net([*LISTEN, "--max-per-peer", "2", "--max-connections", "3"])
    port = server.tcp_port
    first, second = connect(port), connect(port)
    for sock in (first, second):
        assert read_exactly(sock, 8) == b"Welcome!"
    with connect(port) as third:
        assert read_until_closed(third) == (BUSY, "eof")
    other = connect(port, source="127.0.0.2")
    assert read_exactly(other, 8) == b"Welcome!"
    with connect(port, source="127.0.0.3") as fourth:
        assert read_until_closed(fourth) == (BUSY, "eof")
    first.close()
    time.sleep(0.3)
    with connect(port) as again:
        assert read_exactly(again, 8) == b"Welcome!"
        again.sendall(b"back")
        assert read_exactly(again, 12) == b"Hello, back!"
    second.close()
    other.close()
    counters = final_counters(server)
    assert counters["refusals"] == {"max-per-peer": 1, "max-connections": 1}
    assert len(refusals_logged(server, "max-per-peer")) == 1


def test_refusals_are_logged_at_a_bounded_rate(twist_net: Any) -> None:
    """
    200 refused connections make one log line per reason, while every one
    of them is counted.
    """
    server = twist_net([*LISTEN, "--max-per-peer", "1"])
    with connect(server.tcp_port) as held:
        read_exactly(held, 8)
        for _ in range(200):
            with connect(server.tcp_port) as extra:
                assert read_until_closed(extra) == (BUSY, "eof")
    counters = final_counters(server)
    assert counters["refusals"]["max-per-peer"] == 200
    assert len(refusals_logged(server, "max-per-peer")) == 1


# 7. Churn and resets --------------------------------------------------------


def test_churn_with_resets_leaks_nothing(twist_net: Any) -> None:
    """
    2,000 connect/close cycles, every second one reset (C{SO_LINGER} 0)
    while a large reply is on its way: the server's descriptors come back to
    their baseline, its memory barely moves, and only the expected log
    lines were written.
    """
    server = twist_net([*LISTEN, "--framing", "line", "--max-message", "65536"])
    pid = server.process.pid
    port = server.tcp_port
    big = b"r" * 60000 + b"\n"
    for _ in range(50):
        with connect(port) as sock:
            read_exactly(sock, 10)
    time.sleep(0.3)
    fds_before, rss_before = open_fds(pid), rss_bytes(pid)
    answered = 0
    for cycle in range(2000):
        sock = connect(port)
        if cycle % 2:
            sock.sendall(big)
            read_exactly(sock, 10)
            reset(sock)
        else:
            sock.sendall(b"hi\n")
            assert read_exactly(sock, 10 + 12) == b"Welcome!\r\nHello, hi!\r\n"
            answered += 1
            sock.close()
    deadline = time.monotonic() + 5
    while open_fds(pid) > fds_before and time.monotonic() < deadline:
        time.sleep(0.1)
    fds_after, rss_after = open_fds(pid), rss_bytes(pid)
    print(
        f"fds {fds_before} -> {fds_after}; RSS {rss_before / 1e6:.1f} -> {rss_after / 1e6:.1f} MB"
    )
    assert fds_after == fds_before
    assert rss_after - rss_before < 3 * 1024 * 1024
    assert unexpected_events(server) == []
    counters = final_counters(server)
    assert counters["connections_open"] == 0
    assert counters["connections_total"] == 2050


# 8. Out of file descriptors -------------------------------------------------


def opened(server: Any) -> int:
    """How many C{connection_opened} events the server has logged so far."""
    return sum(event.get("event") == "connection_opened" for event in list(server.events))


def test_out_of_descriptors_refuses_stays_cheap_and_recovers(twist_net: Any) -> None:
    """
    Under an C{RLIMIT_NOFILE} of 48, connections beyond it get C{server
    busy} (counted as C{accept-emfile}, logged once), the idle server uses
    next to no CPU while clients keep knocking, and service resumes when
    clients leave.
    """
    server = twist_net([*LISTEN, "--max-per-peer", "0"])
    pid = server.process.pid
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (48, 48))
    port = server.tcp_port
    held = [connect(port) for _ in range(60)]
    greeted = [sock for sock in held if read_exactly(sock, 8) == b"Welcome!"]
    assert 20 < len(greeted) < 48
    # The log lines of the connections just greeted leave at the end of the
    # server's reactor iteration, after the greetings: count from there.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and opened(server) < len(greeted):
        time.sleep(0.05)
    lines_before, cpu_before = len(server.raw_lines), cpu_seconds(pid)
    turned_away = 0
    for _ in range(5):
        knocking = [connect(port) for _ in range(20)]
        for extra in knocking:
            received, _ = read_until_closed(extra, timeout=3)
            turned_away += received == BUSY
            extra.close()
    time.sleep(1)
    cpu_used = cpu_seconds(pid) - cpu_before
    new_lines = len(server.raw_lines) - lines_before
    print(f"100 refused in the limit: {cpu_used:.2f} s CPU, {new_lines} log lines")
    assert turned_away == 100
    assert cpu_used < 0.5
    assert new_lines <= 3, server.raw_lines[lines_before:][:5]
    for sock in held:
        sock.close()
    time.sleep(0.5)
    with connect(port) as again:
        assert read_exactly(again, 8) == b"Welcome!"
        again.sendall(b"back")
        assert read_exactly(again, 12) == b"Hello, back!"
    assert unexpected_events(server) == []
    counters = final_counters(server)
    assert counters["refusals"]["accept-emfile"] >= 100
