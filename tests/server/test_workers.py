"""
C{twist net --workers N} (L{twisted_net.server.workers.supervisor},
L{twisted_net.server.workers.worker}):
the supervisor's pieces in memory, then the installed program with two
workers: both serve, a killed worker comes back, SIGTERM stops everything.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from typing import Any

import pytest
from support import needs_ipv6, write_tls_files
from twisted.internet.error import CannotListenError, ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.python.failure import Failure

from twisted_net.config import ServerConfig
from twisted_net.server.endpoints import ListenRequest
from twisted_net.server.workers.pool import WorkerPool
from twisted_net.server.workers.sockets import SharedSockets, bind_group
from twisted_net.server.workers.spec import FIRST_FD, WorkerSpec
from twisted_net.tap import Options

LOOPBACK = "127.0.0.1"


# Which endpoints can be shared ---------------------------------------------


def test_options_refuse_what_workers_cannot_share(tmp_path: Any) -> None:
    options = Options()
    with pytest.raises(usage.UsageError, match="--workers cannot share"):
        options.parseOptions(["--workers", "2", "--listen", f"unix:{tmp_path}/s"])


def test_options_refuse_zero_workers() -> None:
    with pytest.raises(usage.UsageError):
        Options().parseOptions(["--workers", "0"])


def test_help_says_limits_are_per_worker() -> None:
    assert "apply per worker" in str(Options())


# Binding ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_bind_group_shares_one_port(kind: int) -> None:
    group = bind_group(ListenRequest(kind, LOOPBACK, 0), 3)
    try:
        ports = {member.getsockname()[1] for member in group}
        assert len(group) == 3 and len(ports) == 1 and ports != {0}
        for member in group:
            assert member.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            assert not member.getblocking()
    finally:
        for member in group:
            member.close()


@needs_ipv6
@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_bind_group_ipv6(kind: int) -> None:
    """
    An IPv6 interface is resolved numerically (C{socket.getaddrinfo}) and
    bound as one IPv6 port.
    """
    group = bind_group(ListenRequest(kind, "::1", 0), 2)
    try:
        names = {member.getsockname()[:2] for member in group}
        assert len(names) == 1 and next(iter(names))[0] == "::1"
        assert all(member.family == socket.AF_INET6 for member in group)
    finally:
        for member in group:
            member.close()


def test_bind_group_refuses_an_unknown_scope() -> None:
    """
    An IPv6 address whose scope names no interface cannot be resolved: it
    is refused as an address that cannot be listened on, as listenTCP does.
    """
    with pytest.raises(CannotListenError):
        bind_group(ListenRequest(socket.SOCK_STREAM, "fe80::1%nonexistent0", 0), 2)


def test_bind_group_does_not_join_another_instance() -> None:
    """
    A port held by another SO_REUSEPORT group (say, an instance still
    running) is refused, not silently shared.
    """
    other = bind_group(ListenRequest(socket.SOCK_STREAM, LOOPBACK, 0), 2)
    try:
        port = other[0].getsockname()[1]
        with pytest.raises(CannotListenError):
            bind_group(ListenRequest(socket.SOCK_STREAM, LOOPBACK, port), 2)
    finally:
        for member in other:
            member.close()


def test_bind_group_reports_a_taken_port() -> None:
    taken = socket.socket()
    taken.bind((LOOPBACK, 0))
    taken.listen()
    try:
        with pytest.raises(CannotListenError):
            bind_group(ListenRequest(socket.SOCK_STREAM, LOOPBACK, taken.getsockname()[1]), 2)
    finally:
        taken.close()


# The worker pool, with a fake process reactor -------------------------------


class FakeProcess:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[int] = []

    def signalProcess(self, number: int) -> None:
        self.signals.append(number)


class ProcessClock(Clock):
    """
    A clock whose C{spawnProcess} records the workers it would start.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[Any, list[str], dict[int, Any], FakeProcess]] = []
        self.stopped = False

    def spawnProcess(
        self,
        protocol: Any,
        executable: str,
        args: list[str],
        env: dict[str, str],
        childFDs: dict[int, Any],
    ) -> FakeProcess:
        process = FakeProcess(1000 + len(self.spawned))
        self.spawned.append((protocol, args, childFDs, process))
        return process

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def pool() -> Any:
    sockets = SharedSockets([f"tcp:0:interface={LOOPBACK}"], [(LOOPBACK, 0)], "seed", 2)
    sockets.startService()
    clock = ProcessClock()
    template = WorkerSpec(
        index=0,
        config={},
        framing="seed",
        listen=[f"tcp:0:interface={LOOPBACK}"],
        udp=[(LOOPBACK, 0)],
    )
    pool = WorkerPool(2, template, sockets, clock, stop_timeout=15)
    yield pool, clock, sockets
    sockets.stopService()


def serve(protocol: Any) -> None:
    protocol.childDataReceived(3, b'{"event": "worker_started", "log_format": "up"}\n')


def test_each_worker_gets_its_socket_of_every_group(pool: Any) -> None:
    workers, clock, sockets = pool
    workers.startService()
    assert len(clock.spawned) == 2
    for index, (_, args, child_fds, _) in enumerate(clock.spawned):
        spec = WorkerSpec.from_json(args[-1])
        assert spec.index == index
        assert spec.fds == [FIRST_FD, FIRST_FD + 1]
        assert child_fds[FIRST_FD] == sockets.groups[0][index].fileno()
        assert child_fds[FIRST_FD + 1] == sockets.groups[1][index].fileno()
        assert child_fds[3] == "r"


def test_dead_worker_restarts_after_growing_backoff(pool: Any) -> None:
    workers, clock, _ = pool
    workers.startService()
    protocol = clock.spawned[0][0]
    serve(protocol)
    killed = Failure(ProcessTerminated(signal=9))
    delays = []
    for _ in range(3):
        protocol.processEnded(killed)
        before = len(clock.spawned)
        delay = clock.getDelayedCalls()[0].getTime() - clock.seconds()
        delays.append(delay)
        clock.advance(delay)
        assert len(clock.spawned) == before + 1
        protocol = clock.spawned[-1][0]
        serve(protocol)
    assert delays == sorted(delays) and delays[0] < delays[-1]
    clock.advance(60)
    protocol.processEnded(killed)
    assert clock.getDelayedCalls()[0].getTime() - clock.seconds() == delays[0]


def test_workers_that_never_serve_make_the_supervisor_give_up(pool: Any) -> None:
    workers, clock, _ = pool
    workers.startService()
    protocol = clock.spawned[0][0]
    for attempt in range(3):
        assert not clock.stopped
        protocol.processEnded(Failure(ProcessTerminated(exitCode=1)))
        if attempt < 2:
            clock.advance(60)
            protocol = clock.spawned[-1][0]
    assert clock.stopped


def test_stop_terms_every_worker_then_kills_stragglers(pool: Any) -> None:
    workers, clock, _ = pool
    workers.startService()
    stopped = workers.stopService()
    processes = [entry[3] for entry in clock.spawned]
    assert [p.signals for p in processes] == [[signal.SIGTERM], [signal.SIGTERM]]
    clock.spawned[0][0].processEnded(Failure(ProcessDone(0)))
    clock.advance(15)
    assert processes[1].signals == [signal.SIGTERM, signal.SIGKILL]
    results: list[Any] = []
    stopped.addBoth(results.append)
    assert results == []
    clock.spawned[1][0].processEnded(Failure(ProcessTerminated(signal=9)))
    assert results == [None]
    assert len(clock.spawned) == 2


def test_spec_survives_the_command_line() -> None:
    from dataclasses import asdict

    spec = WorkerSpec(
        index=1,
        config=asdict(ServerConfig(delay=0.5)),
        framing="line",
        listen=["tcp:0"],
        udp=[("::1", 0)],
        fds=[4, 5],
        reactor="x",
    )
    assert WorkerSpec.from_json(spec.to_json()) == spec
    assert ServerConfig(**WorkerSpec.from_json(spec.to_json()).config).delay == 0.5


# The installed twist net --workers 2 ------------------------------------------


def start_workers(twist_net: Any, *extra: str) -> Any:
    server = twist_net(
        [
            "--workers",
            "2",
            "--listen",
            f"tcp:0:interface={LOOPBACK}",
            "--udp",
            f"{LOOPBACK}:0",
            *extra,
        ]
    )
    for index in (0, 1):
        server.wait_for(
            lambda e, i=index: e.get("event") == "worker_started" and e.get("worker") == i
        )
    return server


def worker_pids(server: Any) -> set[int]:
    return {e["worker_pid"] for e in list(server.events) if e.get("event") == "worker_started"}


def exchange(port: int, name: bytes) -> None:
    with socket.create_connection((LOOPBACK, port), timeout=5) as client:
        assert client.recv(100) == b"Welcome!"
        client.sendall(name)
        assert client.recv(100) == b"Hello, " + name + b"!"


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if is_alive(pid)}
        time.sleep(0.05)
    return alive


def test_two_workers_answer_tcp_and_udp_and_share_connections(twist_net: Any) -> None:
    server = start_workers(twist_net)
    tcp = [e for e in server.events if e.get("event") == "listening" and "worker" not in e]
    assert len(tcp) == 2  # the supervisor's own lines: one TCP, one UDP
    for number in range(50):
        exchange(server.tcp_port, b"n%d" % number)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(b"Sarah", (LOOPBACK, server.udp_port))
        assert client.recv(100) == b"Hello, Sarah!"
    server.wait_for(
        lambda e: sum(1 for x in list(server.events) if x.get("event") == "connection_closed") >= 50
    )
    served = Counter(
        e["worker_pid"] for e in list(server.events) if e.get("event") == "connection_opened"
    )
    assert sum(served.values()) == 50
    assert set(served) == worker_pids(server)
    assert len(served) == 2


def test_sigterm_drains_and_stops_every_worker(twist_net: Any) -> None:
    """
    A reply owed when SIGTERM arrives is still sent (each worker drains),
    then every worker and the supervisor are gone, cleanly.
    """
    server = start_workers(twist_net, "--delay", "0.5", "--log-messages")
    pids = worker_pids(server)
    client = socket.create_connection((LOOPBACK, server.tcp_port), timeout=5)
    assert client.recv(100) == b"Welcome!"
    client.sendall(b"Owed")
    server.wait_for(lambda e: e.get("event") == "message")
    server.process.send_signal(signal.SIGTERM)
    assert client.recv(100) == b"Hello, Owed!"
    client.close()
    assert server.process.wait(20) in (0, -signal.SIGTERM)
    server.stop()
    assert wait_gone(pids, timeout=1) == set()
    stopped = [e for e in server.events if e.get("event") == "worker_stopped"]
    assert sorted(e["status"] for e in stopped) == ["exit status 0", "exit status 0"]
    assert not [
        e for e in server.events if e.get("log_level", {}).get("name") in ("error", "critical")
    ]


def test_killed_worker_is_restarted_and_serves(twist_net: Any) -> None:
    server = start_workers(twist_net)
    victim = min(worker_pids(server))
    os.kill(victim, signal.SIGKILL)
    died = server.wait_for(lambda e: e.get("event") == "worker_died")
    assert died["pid"] == victim and "signal 9" in died["status"]
    reborn = server.wait_for(
        lambda e: (
            e.get("event") == "worker_started"
            and e["worker_pid"] not in (victim,)
            and e["worker"] == died["index"]
        )
    )
    for number in range(40):
        exchange(server.tcp_port, b"again%d" % number)
    served = {e["worker_pid"] for e in list(server.events) if e.get("event") == "connection_opened"}
    assert reborn["worker_pid"] in served
    assert victim not in served
    assert server.stop() in (0, -signal.SIGTERM)
    assert wait_gone(worker_pids(server), timeout=1) == set()


def test_workers_share_tls_ipv6_and_proxy_endpoints(twist_net: Any, tmp_path: Any) -> None:
    """
    C{ssl:}, C{tcp6:} and C{haproxy:} endpoints work through the shared
    sockets as they do in one process.
    """
    import ssl

    trustme = pytest.importorskip("trustme")
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    ca = trustme.CA()
    files = write_tls_files(ca, tmp_path, "localhost")
    key, cert = files["key"], files["cert"]
    server = twist_net(
        [
            "--workers",
            "2",
            "--no-udp",
            "--listen",
            f"ssl:0:interface={LOOPBACK}:privateKey={key}:certKey={cert}",
            "--listen",
            "tcp6:0:interface=\\:\\:1",
            "--listen",
            f"haproxy:tcp:0:interface={LOOPBACK}",
        ]
    )
    for index in (0, 1):
        server.wait_for(
            lambda e, i=index: e.get("event") == "worker_started" and e.get("worker") == i
        )
    tls_port, ipv6_port, proxy_port = (port for _, port in server.listening("tcp")[:3])
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with (
        socket.create_connection((LOOPBACK, tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as client,
    ):
        assert client.recv(100) == b"Welcome!"
        client.sendall(b"Tracy")
        assert client.recv(100) == b"Hello, Tracy!"
    with socket.create_connection(("::1", ipv6_port), timeout=5) as client:
        assert client.recv(100) == b"Welcome!"
    with socket.create_connection((LOOPBACK, proxy_port), timeout=5) as client:
        client.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n")
        assert client.recv(100) == b"Welcome!"
    server.wait_for(
        lambda e: e.get("event") == "connection_opened" and e.get("peer") == "203.0.113.7:5555"
    )
    assert server.stop() in (0, -signal.SIGTERM)


def test_workers_stop_when_the_supervisor_is_killed(twist_net: Any) -> None:
    server = start_workers(twist_net)
    pids = worker_pids(server)
    server.stop(signal.SIGKILL)
    assert wait_gone(pids) == set()
