"""
Hostile UDP traffic against the installed C{twist net}: a forged datagram
between two servers (the "Loop DoS" of CVE-2024-2169), forged classic
service source ports, a flood from one source next to a polite one,
oversize datagrams and send errors.

Forged datagrams are built by hand (IPv4 and UDP headers) and sent through
a raw socket, which needs root; those tests are skipped elsewhere.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import pytest
from test_hardening_tcp import final_counters, refusals_logged, unexpected_events

LOOPBACK = "127.0.0.1"
UDP_ONLY = ["--no-tcp", "--udp", f"{LOOPBACK}:0"]


def _raw_socket() -> socket.socket:
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        pytest.skip("raw sockets need root (CAP_NET_RAW)")


def forge_datagram(source: tuple[str, int], destination: tuple[str, int], payload: bytes) -> None:
    """
    Send one UDP datagram with a forged IPv4 source address and port.
    """
    udp_length = 8 + len(payload)
    udp = struct.pack("!HHHH", source[1], destination[1], udp_length, 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + udp_length,
        0x1234,
        0,
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(source[0]),
        socket.inet_aton(destination[0]),
    )
    with _raw_socket() as raw:
        raw.sendto(header + udp, (destination[0], 0))


def udp_socket(source: str = LOOPBACK, timeout: float = 2.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    return sock


def drain(sock: socket.socket, quiet: float = 0.3) -> list[bytes]:
    """
    Every datagram that arrives until none has for C{quiet} seconds.
    """
    sock.settimeout(quiet)
    received = []
    while True:
        try:
            received.append(sock.recv(70000))
        except TimeoutError:
            return received


def test_two_servers_do_not_ping_pong_a_forged_datagram(twist_net: Any) -> None:
    """
    Server A's address is forged as the source of C{ping} sent to server B:
    B answers A once, A recognises the reply and answers nothing, so the
    loop dies after one datagram (counted as C{udp-loop} on A).
    """
    first = twist_net(UDP_ONLY)
    second = twist_net(UDP_ONLY)
    forge_datagram((LOOPBACK, first.udp_port), (LOOPBACK, second.udp_port), b"ping")
    time.sleep(1.0)
    counters_second = final_counters(second)
    counters_first = final_counters(first)
    assert counters_second["datagrams_answered"] == 1
    assert counters_first["datagrams_answered"] == 0
    assert counters_first["refusals"] == {"udp-loop": 1}
    assert counters_second["refusals"] == {}
    assert unexpected_events(first) == unexpected_events(second) == []


@pytest.mark.parametrize("port", [0, 7, 19, 53, 123, 1900, 11211])
def test_forged_classic_service_source_ports_are_not_answered(twist_net: Any, port: int) -> None:
    """
    A datagram that claims to come from an echo, chargen, DNS, NTP, SSDP,
    memcached port (or port 0) is dropped and counted, never answered.
    """
    server = twist_net(UDP_ONLY)
    forge_datagram((LOOPBACK, port), (LOOPBACK, server.udp_port), b"hi")
    with udp_socket() as polite:
        polite.sendto(b"after", (LOOPBACK, server.udp_port))
        assert polite.recv(100) == b"Hello, after!"
    counters = final_counters(server)
    assert counters["datagrams_answered"] == 1
    assert counters["refusals"] == {"udp-source-port": 1}


def test_flood_from_one_source_is_answered_at_the_rate(twist_net: Any) -> None:
    """
    C{--udp-rate 50 --udp-burst 10}: 400 datagrams from 127.0.0.1 within a
    second get about 10 + 50/s answers and the rest are counted as
    C{udp-rate} (logged once); 40 lockstep datagrams from 127.0.0.2 in the
    same second are every one answered.
    """
    server = twist_net([*UDP_ONLY, "--udp-rate", "50", "--udp-burst", "10"])
    target = (LOOPBACK, server.udp_port)
    flooder, polite = udp_socket(), udp_socket("127.0.0.2")
    flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    polite_answers = 0
    started = time.monotonic()
    for index in range(400):
        flooder.sendto(b"flood %d" % index, target)
        if index % 10 == 0:
            polite.sendto(b"polite", target)
            polite_answers += polite.recv(100) == b"Hello, polite!"
        time.sleep(0.0015)
    elapsed = time.monotonic() - started
    flood_answers = len(drain(flooder))
    flooder.close()
    polite.close()
    counters = final_counters(server)
    print(
        f"flood: 400 sent in {elapsed:.2f} s, {flood_answers} answered; "
        f"polite: {polite_answers}/40 answered"
    )
    assert polite_answers == 40
    assert 10 + 50 * elapsed * 0.8 <= flood_answers <= 10 + 50 * (elapsed + 0.3)
    assert counters["refusals"]["udp-rate"] == 400 - flood_answers
    assert counters["datagrams_answered"] == flood_answers + polite_answers
    assert len(refusals_logged(server, "udp-rate")) == 1


def test_rate_limit_zero_switches_it_off(twist_net: Any) -> None:
    """
    C{--udp-rate 0}: a burst far above the default limit is answered in
    full.
    """
    server = twist_net([*UDP_ONLY, "--udp-rate", "0", "--udp-burst", "1"])
    with udp_socket() as sock:
        answered = 0
        for index in range(300):
            sock.sendto(b"n%d" % index, (LOOPBACK, server.udp_port))
            answered += sock.recv(100) == b"Hello, n%d!" % index
    assert answered == 300
    assert final_counters(server)["refusals"] == {}


def test_oversize_datagram_is_refused_never_truncated(twist_net: Any) -> None:
    """
    With C{--max-message 100}, 100 bytes (plus a line ending) are answered,
    101 bytes get an error line: the receive buffer is larger than the
    limit, so an oversize datagram is never cut into an answerable one.
    """
    server = twist_net([*UDP_ONLY, "--max-message", "100"])
    target = (LOOPBACK, server.udp_port)
    with udp_socket() as sock:
        sock.sendto(b"a" * 100 + b"\r\n", target)
        assert sock.recv(200) == b"Hello, " + b"a" * 100 + b"!\r\n"
        sock.sendto(b"b" * 101, target)
        assert sock.recv(200) == b"error: message longer than 100 bytes\r\n"
        sock.sendto(b"c" * 60000, target)
        assert sock.recv(200) == b"error: message longer than 100 bytes\r\n"
    assert final_counters(server)["refusals"] == {"max-message": 2}


def test_send_errors_are_counted_and_the_port_keeps_serving(twist_net: Any) -> None:
    """
    A reply too large for one datagram (C{EMSGSIZE}) and replies to ports
    that were closed meanwhile (ICMP port unreachable) are counted, never
    stop the port, and the next datagram is answered.
    """
    server = twist_net([*UDP_ONLY, "--max-message", "65507"])
    target = (LOOPBACK, server.udp_port)
    with udp_socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 17)
        sock.sendto(b"x" * 65507, target)
        time.sleep(0.2)
        for _ in range(50):
            with udp_socket() as gone:
                gone.sendto(b"gone", target)
        time.sleep(0.2)
        sock.sendto(b"still there?", target)
        assert sock.recv(100) == b"Hello, still there?!"
    counters = final_counters(server)
    assert counters["udp_send_errors"] >= 1
    assert counters["refusals"].get("udp-send-emsgsize") == 1
    assert len(refusals_logged(server, "udp-send-emsgsize")) == 1
    assert unexpected_events(server) == []
