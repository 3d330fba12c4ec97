"""
End-to-end: what C{twist net} says when it cannot listen, or is told to
listen somewhere no socket can be: one clear line in the user's words,
naming the side (TCP or UDP) and the address, with the same exit status
over TCP and UDP.  Runs the installed C{twist net} as a subprocess.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from support import installed_script, needs_ipv6

LOOPBACK = "127.0.0.1"

PYTHON_WORDS = ("Traceback", "invalid literal", "argument", "Parameter type enforcement", "()")


def run_to_exit(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed_script("twist"), "net", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=30,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """
    The one error line of a run, checked free of Python's words.
    """
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.startswith(("Error:", "twist net: error:"))
    ]
    assert len(lines) == 1, result.stderr
    for words in PYTHON_WORDS:
        assert words not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def taken() -> object:
    """
    A TCP and a UDP port on 127.0.0.1, both in use.
    """
    tcp = socket.socket()
    tcp.bind((LOOPBACK, 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((LOOPBACK, 0))
    yield tcp.getsockname()[1], udp.getsockname()[1]
    tcp.close()
    udp.close()


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_port_in_use_names_the_side_and_the_address(
    taken: tuple[int, int], workers: list[str]
) -> None:
    """
    A port in use says TCP or UDP, and where; both exit C{EX_UNAVAILABLE},
    alone and as the C{--workers} supervisor.
    """
    tcp, udp = taken
    over_tcp = run_to_exit([*workers, "--listen", f"tcp:{tcp}:interface={LOOPBACK}", "--no-udp"])
    over_udp = run_to_exit([*workers, "--no-tcp", "--udp", f"{LOOPBACK}:{udp}"])
    assert error_line(over_tcp) == (
        f"twist net: error: cannot listen on TCP {LOOPBACK}:{tcp}: Address already in use"
    )
    assert error_line(over_udp) == (
        f"twist net: error: cannot listen on UDP {LOOPBACK}:{udp}: Address already in use"
    )
    assert over_tcp.returncode == over_udp.returncode == os.EX_UNAVAILABLE


@needs_ipv6
def test_ipv6_port_in_use_in_brackets() -> None:
    with socket.socket(socket.AF_INET6) as held:
        held.bind(("::1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = run_to_exit(["--listen", f"tcp6:{port}:interface=\\:\\:1", "--no-udp"])
    assert error_line(result) == (
        f"twist net: error: cannot listen on TCP [::1]:{port}: Address already in use"
    )


@pytest.mark.parametrize(
    ("tcp", "udp", "reason"),
    [
        ("tcp:99999", "99999", "port must be 0 to 65535"),
        (f"tcp:99999:interface={LOOPBACK}", f"{LOOPBACK}:99999", "port must be 0 to 65535"),
        ("tcp:abc", "abc", "port 'abc' is not a number"),
    ],
)
def test_bad_port_is_the_same_usage_error_over_tcp_and_udp(tcp: str, udp: str, reason: str) -> None:
    """
    A port no socket can have is refused while the options are parsed, with
    the same reason and status (C{EX_USAGE}) over TCP and UDP.
    """
    over_tcp = run_to_exit(["--listen", tcp, "--no-udp"])
    over_udp = run_to_exit(["--no-tcp", "--udp", udp])
    assert error_line(over_tcp) == f"Error: bad --listen endpoint {tcp!r}: {reason}"
    assert error_line(over_udp) == f"Error: bad UDP address {udp!r}: {reason}"
    assert over_tcp.returncode == over_udp.returncode == os.EX_USAGE


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max-per-peer", "abc"], "Error: --max-per-peer must be a number, not 'abc'"),
        (["--workers", "many"], "Error: --workers must be a number, not 'many'"),
        (
            ["--listen", "tcp:0:backlog=lots"],
            "Error: bad --listen endpoint 'tcp:0:backlog=lots': 'lots' is not a number",
        ),
        (
            ["--listen", "tcp:0:bogus=1"],
            "Error: bad --listen endpoint 'tcp:0:bogus=1': unknown option 'bogus'",
        ),
        (
            ["--listen", "tcp6:0:interface=::1"],
            "Error: bad --listen endpoint 'tcp6:0:interface=::1': interface given twice "
            "(escape each ':' of an IPv6 address, as in 'tcp6:0:interface=\\:\\:1', "
            "quoted for the shell)",
        ),
        (
            ["--metrics", "tcp:99999"],
            "Error: bad --metrics endpoint 'tcp:99999': port must be 0 to 65535",
        ),
    ],
)
def test_bad_values_in_the_users_words(args: list[str], expected: str) -> None:
    result = run_to_exit(args)
    assert error_line(result) == expected
    assert result.returncode == os.EX_USAGE
