"""
The C{twist net} process: a graceful stop under load, and startup errors
that end in one clear line and a non-zero status, never a traceback.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from typing import Any

import pytest
from support import installed_script
from test_hardening_tcp import (
    LISTEN,
    LOOPBACK,
    _push_without_reading,
    connect,
    read_exactly,
    read_until_closed,
    unexpected_events,
)

# 12. Graceful shutdown --------------------------------------------------------


def _sigterm_and_wait(server: Any, limit: float) -> tuple[int, float]:
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(limit)
    return code, time.monotonic() - started


def test_sigterm_with_200_clients_answers_everything_received(twist_net: Any) -> None:
    """
    200 clients (from four loopback hosts) each have a message in the
    server's one-second delay queue when SIGTERM arrives: the server stops
    listening at once, every one of them still gets its reply and then a
    clean close, and the process exits cleanly well inside
    C{--shutdown-timeout}.
    """
    server = twist_net([*LISTEN, "--framing", "line", "--delay", "1", "--shutdown-timeout", "5"])
    port = server.tcp_port
    clients = [connect(port, source=f"127.0.0.{1 + index % 4}") for index in range(200)]
    for index, sock in enumerate(clients):
        assert read_exactly(sock, 10) == b"Welcome!\r\n"
        sock.sendall(b"client %d\n" % index)
    time.sleep(0.3)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, port), timeout=2).close()
    for index, sock in enumerate(clients):
        received, ended = read_until_closed(sock, timeout=5)
        assert (received, ended) == (b"Hello, client %d!\r\n" % index, "eof")
        sock.close()
    code = server.process.wait(5)
    elapsed = time.monotonic() - started
    print(f"200 clients drained; exit {code} after {elapsed:.2f} s")
    assert code in (0, -15)
    assert elapsed < 5
    counters = server.wait_for(lambda e: e.get("event") == "stopped", 5)["counters"]
    assert counters["messages_answered"] == 200
    assert counters["connections_open"] == 0
    assert counters["refusals"] == {}
    assert unexpected_events(server) == []


def test_sigterm_aborts_a_straggler_after_the_shutdown_timeout(twist_net: Any) -> None:
    """
    A client that never reads keeps replies owed for ever: the stop waits
    C{--shutdown-timeout} seconds, aborts it (counted), and exits cleanly.
    """
    server = twist_net(
        [*LISTEN, "--framing", "line", "--shutdown-timeout", "2", "--write-timeout", "0"]
    )
    with connect(server.tcp_port) as straggler, connect(server.tcp_port) as polite:
        read_exactly(polite, 10)
        read_exactly(straggler, 10)
        straggler.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        _, _, ended = _push_without_reading(straggler, 1 << 28, b"x\n" * 32768, 15)
        assert ended == "blocked"
        code, elapsed = _sigterm_and_wait(server, 10)
        assert read_until_closed(polite) == (b"", "eof")
        _, straggler_end = read_until_closed(straggler, timeout=5)
    print(f"straggler aborted; exit {code} after {elapsed:.2f} s")
    assert code in (0, -15)
    assert 2 <= elapsed < 4
    assert straggler_end == "reset"
    event = server.wait_for(lambda e: e.get("event") == "stopped", 5)
    assert event["counters"]["refusals"] == {"shutdown-timeout": 1}


# 13. Startup errors -----------------------------------------------------------


def _run_twist_net(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed_script("twist"), "net", *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert expected in lines[0], output
    assert len(lines) <= 3, output


@pytest.fixture
def busy_ports() -> Any:
    tcp = socket.socket()
    tcp.bind((LOOPBACK, 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((LOOPBACK, 0))
    yield tcp.getsockname()[1], udp.getsockname()[1]
    tcp.close()
    udp.close()


def test_tcp_port_in_use(busy_ports: tuple[int, int]) -> None:
    result = _run_twist_net(["--listen", f"tcp:{busy_ports[0]}:interface={LOOPBACK}", "--no-udp"])
    _assert_one_clear_line(result, "Address already in use")
    assert result.returncode == 69


def test_udp_port_in_use(busy_ports: tuple[int, int]) -> None:
    result = _run_twist_net(["--no-tcp", "--udp", f"{LOOPBACK}:{busy_ports[1]}"])
    _assert_one_clear_line(result, "Address already in use")


def test_address_not_on_this_machine() -> None:
    result = _run_twist_net(["--listen", "tcp:0:interface=192.0.2.1", "--no-udp"])
    _assert_one_clear_line(result, "Cannot assign requested address")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--listen", "nonsense:1"], "bad --listen endpoint 'nonsense:1'"),
        (["--listen", "tcp:99999"], "port must be 0 to 65535"),
        (["--udp", "127.0.0.1:99999"], "port must be 0 to 65535"),
        (["--max-connections", "-1"], "--max-connections must be at least 0"),
        (["--udp-rate", "fast"], "--udp-rate must be a number"),
        (["--idle-timeout", "nan"], "--idle-timeout must be at least 0"),
        (["--max-message", "0"], "--max-message must be at least 1"),
        (["--framing", "json"], "framing must be one of seed, line"),
        (["--no-tcp", "--no-udp"], "leave nothing to serve"),
    ],
)
def test_bad_option_values(args: list[str], expected: str) -> None:
    result = _run_twist_net(args)
    _assert_one_clear_line(result, expected)
    assert result.returncode in (64, 69)


def test_permission_denied_on_a_privileged_port() -> None:
    """
    Without C{CAP_NET_BIND_SERVICE} (dropped with C{setpriv}), port 80
    cannot be bound: one line, status 69.
    """
    setpriv = subprocess.run(["which", "setpriv"], capture_output=True, text=True).stdout
    if not setpriv.strip():
        pytest.skip("setpriv is not installed")
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as limit:
        if int(limit.read()) <= 80:
            pytest.skip("port 80 is not privileged here")
    result = subprocess.run(
        [
            setpriv.strip(),
            "--bounding-set=-net_bind_service",
            installed_script("twist"),
            "net",
            "--listen",
            f"tcp:80:interface={LOOPBACK}",
            "--no-udp",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    if "setpriv:" in result.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {result.stderr.strip()}")
    _assert_one_clear_line(result, "Permission denied")
    assert result.returncode == 69
