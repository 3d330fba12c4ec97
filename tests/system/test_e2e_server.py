"""
End to end: the installed C{twist net}, run as a subprocess with JSON logs,
spoken to over loopback sockets.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import RunningServer, installed_script, needs_ipv6

LOOPBACK = "127.0.0.1"
TCP_ONLY = ["--listen", f"tcp:0:interface={LOOPBACK}", "--no-udp"]
BOTH = ["--listen", f"tcp:0:interface={LOOPBACK}", "--udp", f"{LOOPBACK}:0"]

StartServer = Callable[..., RunningServer]


def receive(sock: socket.socket, size: int, timeout: float = 5.0) -> bytes:
    """
    Read until C{size} bytes arrived, the peer closed, or C{timeout}.
    """
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < size and time.monotonic() < deadline:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def receive_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """
    Read everything until the server closes (fails on C{timeout}).
    """
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def no_traceback(server: RunningServer) -> None:
    text = "\n".join(server.raw_lines + server.stderr_lines)
    assert "Traceback" not in text, text


def run_to_exit(args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """
    Run C{twist --log-format json net ARGS} until it exits by itself.
    """
    return subprocess.run(
        [installed_script("twist"), "--log-format", "json", "net", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )


def events_named(server: RunningServer, name: str) -> list[dict[str, Any]]:
    return [event for event in server.events if event.get("event") == name]


# Sessions ----------------------------------------------------------------------


def test_seed_nc_session(twist_net: StartServer) -> None:
    """
    What a person typing into C{nc} sees with the default framing: each
    line is answered with its own line ending; C{exit} closes.
    """
    server = twist_net(TCP_ONLY)
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as sock:
        assert receive(sock, 8) == b"Welcome!"
        sock.sendall(b"Michael\n")
        assert receive(sock, 16) == b"Hello, Michael!\n"
        sock.sendall(b"Tracy\r\n")
        assert receive(sock, 15) == b"Hello, Tracy!\r\n"
        sock.sendall(b"\xc3\xa9\xff\x00\n")
        assert receive(sock, 13) == b"Hello, \xc3\xa9\xff\x00!\n"
        sock.sendall(b"exit\n")
        assert receive_until_closed(sock) == b""
    assert server.stop() in (0, -signal.SIGTERM)
    no_traceback(server)


def test_line_session(twist_net: StartServer) -> None:
    """
    C{--framing line}: CRLF greeting and replies; a pipelined burst is
    answered in order, C{exit} closes after the earlier replies.
    """
    server = twist_net([*TCP_ONLY, "--framing", "line"])
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as sock:
        assert receive(sock, 10) == b"Welcome!\r\n"
        sock.sendall(b"Michael\r\nTracy\nSar")
        time.sleep(0.05)
        sock.sendall(b"ah\r\nexit\r\nnever\r\n")
        assert receive_until_closed(sock) == (
            b"Hello, Michael!\r\nHello, Tracy!\r\nHello, Sarah!\r\n"
        )
    no_traceback(server)


def test_max_message_over_tcp(twist_net: StartServer) -> None:
    """
    C{--max-message}: a longer message gets an error line, then the close.
    """
    server = twist_net([*TCP_ONLY, "--framing", "line", "--max-message", "5"])
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as sock:
        receive(sock, 10)
        sock.sendall(b"12345\r\n123456\r\n")
        assert receive_until_closed(sock) == (
            b"Hello, 12345!\r\nerror: message longer than 5 bytes\r\n"
        )


def test_udp_ipv4(twist_net: StartServer) -> None:
    """
    Every datagram is answered with C{Hello, M!}, line ending after the C{!}.
    """
    server = twist_net(BOTH)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        replies = []
        for datagram in [b"Michael", b"Tracy\n", b"\xff\x00"]:
            sock.sendto(datagram, (LOOPBACK, server.udp_port))
            replies.append(sock.recv(1024))
    assert replies == [b"Hello, Michael!", b"Hello, Tracy!\n", b"Hello, \xff\x00!"]


@needs_ipv6
def test_udp_and_tcp_ipv6(twist_net: StartServer) -> None:
    """
    C{--udp [::1]:0} and C{--listen tcp6:...} serve IPv6, next to IPv4.
    """
    server = twist_net(
        [
            "--listen",
            r"tcp6:0:interface=\:\:1",
            "--udp",
            "[::1]:0",
            "--udp",
            f"{LOOPBACK}:0",
        ]
    )
    assert [host for host, _ in server.listening("udp")] == ["::1", LOOPBACK]
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"Sarah", ("::1", server.udp_port))
        assert sock.recv(1024) == b"Hello, Sarah!"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"Tracy", (LOOPBACK, server.listening("udp")[1][1]))
        assert sock.recv(1024) == b"Hello, Tracy!"
    with socket.create_connection(("::1", server.tcp_port), timeout=5) as sock:
        assert receive(sock, 8) == b"Welcome!"
        sock.sendall(b"exit")
        assert receive_until_closed(sock) == b""


def port_is_free(kind: int, port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind((LOOPBACK, port))
    except OSError:
        return False
    return True


def test_defaults_are_the_tutorials(twist_net: StartServer) -> None:
    """
    With no options, C{twist net} listens on TCP and UDP 127.0.0.1:9999
    with the tutorial's framing (skipped when another program has 9999).
    """
    if not (port_is_free(socket.SOCK_STREAM, 9999) and port_is_free(socket.SOCK_DGRAM, 9999)):
        pytest.skip("127.0.0.1:9999 is in use")
    server = twist_net([])
    assert server.listening("tcp") == [(LOOPBACK, 9999)]
    assert server.listening("udp") == [(LOOPBACK, 9999)]
    with socket.create_connection((LOOPBACK, 9999), timeout=5) as sock:
        assert receive(sock, 8) == b"Welcome!"
        sock.sendall(b"Michael")
        assert receive(sock, 15) == b"Hello, Michael!"


def test_several_udp_ports(twist_net: StartServer) -> None:
    """
    C{--udp} is repeatable: each port answers.
    """
    server = twist_net(["--no-tcp", "--udp", f"{LOOPBACK}:0", "--udp", f"{LOOPBACK}:0"])
    ports = [port for _, port in server.listening("udp")]
    assert len(set(ports)) == 2
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for port in ports:
            sock.sendto(b"M", (LOOPBACK, port))
            assert sock.recv(1024) == b"Hello, M!"


def test_udp_max_message(twist_net: StartServer) -> None:
    """
    Over UDP, a longer message is refused with an error datagram, never
    answered truncated.
    """
    server = twist_net(["--no-tcp", "--udp", f"{LOOPBACK}:0", "--max-message", "5"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"x" * 1000, (LOOPBACK, server.udp_port))
        assert sock.recv(2048) == b"error: message longer than 5 bytes\r\n"
        sock.sendto(b"12345", (LOOPBACK, server.udp_port))
        assert sock.recv(2048) == b"Hello, 12345!"


def test_no_udp(twist_net: StartServer) -> None:
    """
    C{--no-udp} serves TCP only.
    """
    server = twist_net(TCP_ONLY)
    assert server.listening("udp") == []
    assert len(server.listening("tcp")) == 1


def test_no_tcp(twist_net: StartServer) -> None:
    """
    C{--no-tcp} serves UDP only.
    """
    server = twist_net(["--no-tcp", "--udp", f"{LOOPBACK}:0"])
    assert server.listening("tcp") == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"M", (LOOPBACK, server.udp_port))
        assert sock.recv(1024) == b"Hello, M!"


def test_delay_does_not_serialise_clients(twist_net: StartServer) -> None:
    """
    C{--delay 0.5} with four clients talking at once: all are answered in
    about 0.5 s, not one after another.
    """
    server = twist_net([*TCP_ONLY, "--delay", "0.5"])
    sockets = [socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) for _ in range(4)]
    try:
        for sock in sockets:
            assert receive(sock, 8) == b"Welcome!"
        started = time.monotonic()
        for index, sock in enumerate(sockets):
            sock.sendall(b"c%d" % index)
        replies = [receive(sock, len(b"Hello, c0!")) for sock in sockets]
        elapsed = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
    assert replies == [b"Hello, c%d!" % index for index in range(4)]
    assert 0.45 <= elapsed < 1.5, elapsed


# Logs --------------------------------------------------------------------------


def test_json_logs_listening_and_connections(twist_net: StartServer) -> None:
    """
    The JSON log says which addresses were actually bound (C{tcp:0} gets a
    real port) and logs each connection opened and closed with the peer,
    in the tutorial's words.
    """
    server = twist_net(BOTH)
    tcp = server.listening("tcp")
    udp = server.listening("udp")
    assert len(tcp) == 1 and len(udp) == 1
    assert tcp[0][0] == LOOPBACK and tcp[0][1] > 0
    assert udp[0][0] == LOOPBACK and udp[0][1] > 0
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as sock:
        peer = f"{LOOPBACK}:{sock.getsockname()[1]}"
        receive(sock, 8)
        sock.sendall(b"exit")
        receive_until_closed(sock)
    opened = server.wait_for(lambda e: e.get("event") == "connection_opened")
    closed = server.wait_for(lambda e: e.get("event") == "connection_closed")
    assert opened["peer"] == peer
    assert opened["log_format"] == "Accept new connection from {peer}..."
    assert closed["peer"] == peer
    assert closed["log_format"] == "Connection from {peer} closed."
    assert events_named(server, "message") == []


def test_log_messages(twist_net: StartServer) -> None:
    """
    C{--log-messages} logs every message, TCP and UDP, with the raw bytes.
    """
    server = twist_net([*BOTH, "--log-messages"])
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as sock:
        receive(sock, 8)
        sock.sendall(b"Mich\xffael")
        receive(sock, len(b"Hello, Mich\xffael!"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"Tracy", (LOOPBACK, server.udp_port))
        sock.recv(1024)
    tcp = server.wait_for(lambda e: e.get("event") == "message")
    udp = server.wait_for(lambda e: e.get("event") == "datagram")
    assert tcp["log_flattened"]["message!r:"] == repr(b"Mich\xffael")
    assert udp["log_flattened"]["message!r:"] == repr(b"Tracy")


# Stopping ----------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(twist_net: StartServer, sig: int) -> None:
    """
    SIGTERM or Ctrl-C: a clean stop, no traceback; the exit status is 0 or
    the signal re-raised after the reactor stopped (twist's convention).
    """
    server = twist_net(BOTH)
    code = server.stop(sig)
    assert code in (0, -sig)
    assert any(e.get("log_format") == "Main loop terminated." for e in server.events)
    no_traceback(server)


def test_sigterm_sends_owed_replies(twist_net: StartServer) -> None:
    """
    SIGTERM while a delayed reply is owed: the reply still arrives, then
    the connection closes and the server exits cleanly.
    """
    server = twist_net([*TCP_ONLY, "--framing", "line", "--delay", "1"])
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as sock:
        receive(sock, 10)
        sock.sendall(b"owed\r\n")
        server.wait_for(lambda e: e.get("event") == "connection_opened")
        time.sleep(0.1)
        server.process.send_signal(signal.SIGTERM)
        assert receive_until_closed(sock, timeout=10) == b"Hello, owed!\r\n"
    assert server.stop() in (0, -signal.SIGTERM)
    assert [e["count"] for e in events_named(server, "draining")] == [1]
    no_traceback(server)


# Startup errors ----------------------------------------------------------------


def assert_one_clear_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """
    A non-zero exit, exactly one error line naming the problem, and no
    traceback anywhere.
    """
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.startswith(("Error:", "twist net: error:"))
    ]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_tcp_port_in_use() -> None:
    """
    A TCP port already taken ends the program with one clear line.
    """
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit(["--listen", f"tcp:{port}:interface={LOOPBACK}", "--no-udp"])
    assert_one_clear_error(result, "cannot listen", str(port), "in use")


def test_udp_port_in_use() -> None:
    """
    A UDP port already taken ends the program with one clear line, and
    the TCP port already bound is released.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOOPBACK, 0))
        port = taken.getsockname()[1]
        result = run_to_exit(
            ["--listen", f"tcp:0:interface={LOOPBACK}", "--udp", f"{LOOPBACK}:{port}"]
        )
    assert_one_clear_error(result, "cannot listen", str(port), "in use")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--listen", "tcp:0:interface=10.255.255.1", "--no-udp"], ["cannot listen"]),
        (["--no-tcp", "--udp", "10.255.255.1:0"], ["cannot listen"]),
    ],
)
def test_cannot_listen(args: list[str], words: list[str]) -> None:
    """
    An address that cannot be bound ends the program with one clear line.
    """
    assert_one_clear_error(run_to_exit(args), *words)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--delay", "soon"], ["--delay", "soon"]),
        (["--max-message", "0"], ["--max-message"]),
        (["--framing", "lines"], ["framing", "lines"]),
        (["--udp", "::1:9999"], ["brackets"]),
        (["--listen", "bogus:1"], ["bogus:1"]),
        (["--listen", "tcp:notaport"], ["tcp:notaport"]),
        (["--listen", "tcp:99999", "--no-udp"], ["tcp:99999", "65535"]),
        (["--no-tcp", "--no-udp"], ["nothing to serve"]),
        (["--no-such-option"], ["no-such-option"]),
    ],
)
def test_bad_options(args: list[str], words: list[str]) -> None:
    """
    Bad option values end the program at once with one clear error line
    (twist then prints the usage) and a non-zero status.
    """
    result = run_to_exit(args)
    assert_one_clear_error(result, *words)
