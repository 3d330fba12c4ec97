"""
The real HAProxy (Debian package C{haproxy}) with the configuration in
C{deploy/haproxy/haproxy.cfg}, on loopback with free ports, in front of two
installed C{twist net --listen haproxy:tcp:...} instances: clients get their
replies, and the servers log each client's own address.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"


def find_program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


HAPROXY = find_program("haproxy")

pytestmark = pytest.mark.skipif(
    HAPROXY is None, reason="haproxy is not installed (Debian package: haproxy)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_for_greeting(port: int, timeout: float = 10.0) -> str:
    """
    Wait until a connection to C{port} is greeted (HAProxy up, a backend
    marked up).

    A probe waits for the whole greeting or for the close, never gives up
    early: a probe that timed out might still reach a server, later than the
    one that succeeded, and be taken for a session opened afterwards.

    @return: the address of the probe that was greeted, as the servers log
        it (the PROXY header names the client).
    """
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=left) as probe:
                address = "{}:{}".format(*probe.getsockname())
                greeting = b""
                while len(greeting) < len(b"Welcome!") and (chunk := probe.recv(64)):
                    greeting += chunk
                if greeting == b"Welcome!":
                    return address
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"nothing greets on {port} through HAProxy")


def wait_closed(servers: list, peer: str, timeout: float = 10.0) -> None:
    """
    Wait until one of the servers has logged the close of C{peer}'s session.

    A client can read the greeting before the test has read the server's
    C{connection_opened} line for it (the log comes through a pipe and a
    reader thread), so "every logged session is closed" alone may hold
    while the probe's session is still on its way into the log.  Its
    C{connection_closed}, logged after its C{connection_opened}, settles it.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for server in servers:
            for event in list(server.events):
                if event.get("event") == "connection_closed" and event.get("peer") == peer:
                    return
        time.sleep(0.05)
    raise AssertionError(f"the servers did not log the close of the probe {peer}")


@pytest.fixture
def haproxy(twist_net) -> Iterator[tuple[int, list]]:
    """
    Two servers behind HAProxy: yields the frontend port and the servers.
    """
    servers = [
        twist_net(["--listen", f"haproxy:tcp:0:interface={LOOPBACK}", "--no-udp"]) for _ in range(2)
    ]
    frontend = free_port()
    env = {
        **os.environ,
        "TWISTED_NET_BIND": f"{LOOPBACK}:{frontend}",
        "TWISTED_NET_BACKEND_1": f"{LOOPBACK}:{servers[0].tcp_port}",
        "TWISTED_NET_BACKEND_2": f"{LOOPBACK}:{servers[1].tcp_port}",
    }
    assert HAPROXY is not None
    check = subprocess.run(
        [HAPROXY, "-c", "-f", str(CONFIG)], env=env, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    process = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(CONFIG)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_closed(servers, wait_for_greeting(frontend))
        yield frontend, servers
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wait_all_closed(server, timeout: float = 10.0) -> None:
    """
    Wait until every connection the server logged as opened is closed (the
    readiness probes).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kinds = [e.get("event") for e in list(server.events)]
        if kinds.count("connection_opened") == kinds.count("connection_closed"):
            return
        time.sleep(0.05)
    raise AssertionError("probe connections still open")


def opened_peers(servers: list) -> list[str]:
    return [
        event["peer"]
        for server in servers
        for event in list(server.events)
        if event.get("event") == "connection_opened"
    ]


def test_clients_through_haproxy(haproxy) -> None:
    """
    Four clients through HAProxy each get the greeting and their replies;
    every connection the servers log names the client's own address and
    port, and the connections were spread over both servers.
    """
    frontend, servers = haproxy
    clients = []
    for index in range(4):
        client = socket.create_connection((LOOPBACK, frontend), timeout=5)
        clients.append(client)
        assert client.recv(1024) == b"Welcome!"
        name = f"Client{index}".encode()
        client.send(name)
        assert client.recv(1024) == b"Hello, " + name + b"!"
    addresses = {"{}:{}".format(*client.getsockname()) for client in clients}
    for client in clients:
        client.send(b"exit")
        assert client.recv(1024) == b""
        client.close()

    deadline = time.monotonic() + 10
    while not addresses <= set(opened_peers(servers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert addresses <= set(opened_peers(servers))
    for server in servers:
        peers = {e["peer"] for e in list(server.events) if e.get("event") == "connection_opened"}
        assert peers & addresses, "leastconn spreads concurrent clients over both servers"
        assert not [e for e in list(server.events) if e.get("event") == "refused"]


def test_per_peer_limit_through_haproxy(twist_net) -> None:
    """
    With C{--max-per-peer 1} behind HAProxy, a client's second connection is
    refused (the server sees the client, not HAProxy), and the refusal names
    the client.
    """
    server = twist_net(
        ["--listen", f"haproxy:tcp:0:interface={LOOPBACK}", "--no-udp", "--max-per-peer", "1"]
    )
    frontend = free_port()
    env = {
        **os.environ,
        "TWISTED_NET_BIND": f"{LOOPBACK}:{frontend}",
        "TWISTED_NET_BACKEND_1": f"{LOOPBACK}:{server.tcp_port}",
        "TWISTED_NET_BACKEND_2": f"{LOOPBACK}:{server.tcp_port}",
    }
    assert HAPROXY is not None
    process = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(CONFIG)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_closed([server], wait_for_greeting(frontend))
        wait_all_closed(server)
        with socket.create_connection((LOOPBACK, frontend), timeout=5) as first:
            assert first.recv(1024) == b"Welcome!"
            with socket.create_connection((LOOPBACK, frontend), timeout=5) as second:
                refused = b""
                while chunk := second.recv(1024):
                    refused += chunk
                assert refused == b"error: server busy\r\n"
                second_address = "{}:{}".format(*second.getsockname())
            first.send(b"Michael")
            assert first.recv(1024) == b"Hello, Michael!"
        event = server.wait_for(
            lambda e: e.get("event") == "refused" and e.get("reason") == "max-per-peer"
        )
        assert event["peer"] == second_address
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def test_health_checks_are_not_sessions(haproxy) -> None:
    """
    HAProxy checks each server every 2 s, with a PROXY LOCAL header (it sends
    one with its checks under C{send-proxy-v2}): the servers close those
    quietly, so no connection is logged while no client connects, and each
    server counts the checks it saw as C{health_checks}.
    """
    _, servers = haproxy
    for server in servers:
        wait_all_closed(server)
    before = len(opened_peers(servers))
    time.sleep(4.5)
    assert len(opened_peers(servers)) == before
    for server in servers:
        server.stop()
        stopped = server.wait_for(lambda e: e.get("event") == "stopped")
        assert stopped["counters"]["health_checks"] >= 1
