"""
The load generator of C{twisted-net bench}: one bounded scenario against one
server, from a small epoll loop in pure Python (no Twisted: the tool must not
share the server's costs or bugs).
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted_net.cli.bench.histogram import Histogram

__all__ = ["SCENARIOS", "LoadRun"]

SCENARIOS = ("lockstep", "pipeline", "churn", "udp")
"""What C{--scenario} accepts (comma-separated or repeated)."""

_CONNECTING, _GREETING, _READY, _RUNNING, _EXITING, _DEAD = range(6)


class _Conn:
    __slots__ = ("buffer", "sent", "sock", "started", "state")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.state = _CONNECTING
        self.buffer = b""
        self.started = 0
        self.sent: deque[int] = deque()


class LoadRun:
    """
    One bounded scenario against one server, driven from one epoll loop.

    @ivar errors: failures by kind (connect, reset, protocol, closed,
        timeout); every one is also in the result's C{errors} total.
    """

    connect_burst = 256
    setup_timeout = 60.0
    udp_timeout = 0.5

    def __init__(
        self,
        host: str,
        port: int,
        scenario: str,
        connections: int,
        duration: float,
        *,
        depth: int = 16,
        message: bytes = b"bench",
        framing: str = "seed",
        count: int = 0,
        progress: Callable[[float, int], None] | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self.family = info[0]
        self.address = info[4]
        self.scenario = scenario
        self.connections = connections
        self.duration = duration
        self.depth = depth if scenario == "pipeline" else 1
        self.framing = framing
        self.count = count
        self.progress = progress
        line = framing == "line"
        self.greeting = b"Welcome!\r\n" if line else b"Welcome!"
        ending, reply_ending = b"", b""
        if scenario == "pipeline" or line:
            ending, reply_ending = b"\n", (b"\r\n" if line else b"\n")
        if scenario == "udp":
            ending, reply_ending = b"", b""
        self.message = message + ending
        self.expected = b"Hello, " + message + b"!" + reply_ending
        self.histogram = Histogram()
        self.errors = dict.fromkeys(("connect", "reset", "protocol", "closed", "timeout"), 0)
        self.messages = 0
        self.established = 0
        self.poller = select.epoll()
        self.conns: dict[int, _Conn] = {}
        self.measuring = False
        self.stopping = False
        self._measure_start: int | None = None

    # Connections -----------------------------------------------------------

    def _open(self) -> _Conn | None:
        kind = socket.SOCK_DGRAM if self.scenario == "udp" else socket.SOCK_STREAM
        sock = socket.socket(self.family, kind)
        sock.setblocking(False)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock)
        conn.started = time.perf_counter_ns()
        code = sock.connect_ex(self.address)
        if code not in (0, 115):  # EINPROGRESS
            sock.close()
            self._error("connect")
            return None
        if kind == socket.SOCK_DGRAM:
            conn.state = _RUNNING
            self.poller.register(sock.fileno(), select.EPOLLIN)
        else:
            self.poller.register(sock.fileno(), select.EPOLLIN | select.EPOLLOUT)
        self.conns[sock.fileno()] = conn
        return conn

    def _close(self, conn: _Conn) -> None:
        # Forget the connection before unregistering it: Ctrl-C can land
        # between the two, and _result must not unregister it twice (ENOENT).
        fd = conn.sock.fileno()
        if fd >= 0 and self.conns.pop(fd, None) is not None:
            self.poller.unregister(fd)
        conn.sock.close()
        conn.state = _DEAD

    def _error(self, kind: str) -> None:
        if not self.stopping:
            self.errors[kind] += 1

    def _fail(self, conn: _Conn, kind: str) -> None:
        self._error(kind)
        self._close(conn)
        if self.scenario == "churn" and not self.stopping:
            self._open()

    def _count(self, latency: int) -> None:
        self.histogram.record(latency)
        self.messages += 1
        if self.count and self.messages >= self.count:
            self.stopping = True

    def _send(self, conn: _Conn, data: bytes) -> bool:
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._fail(conn, "reset")
            return False
        if sent != len(data):  # tiny messages: the kernel always takes them
            self._fail(conn, "reset")
            return False
        return True

    def _start(self, conn: _Conn) -> None:
        conn.state = _RUNNING
        now = time.perf_counter_ns()
        if self.scenario == "pipeline":
            conn.sent.extend([now] * self.depth)
            self._send(conn, self.message * self.depth)
            return
        if self.scenario != "churn":
            conn.started = now
        self._send(conn, self.message)

    # Events ----------------------------------------------------------------

    def _on_stream(self, conn: _Conn, events: int) -> None:
        if conn.state == _CONNECTING:
            if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._fail(conn, "connect")
                return
            conn.state = _GREETING
            self.poller.modify(conn.sock.fileno(), select.EPOLLIN)
            if not events & select.EPOLLIN:
                return
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._fail(conn, "reset")
            return
        if not data:
            if conn.state == _EXITING:
                if self.measuring:
                    self._count(time.perf_counter_ns() - conn.started)
                self._close(conn)
                if not self.stopping:
                    self._open()
            else:
                self._fail(conn, "closed")
            return
        if conn.state == _GREETING:
            data = conn.buffer + data
            if len(data) < len(self.greeting):
                if not self.greeting.startswith(data):
                    self._fail(conn, "protocol")
                conn.buffer = data
                return
            if not data.startswith(self.greeting):
                self._fail(conn, "protocol")
                return
            conn.buffer = b""
            data = data[len(self.greeting) :]
            if self.scenario == "churn":
                self._start(conn)
            else:
                conn.state = _READY
                self.established += 1
                if self.measuring:
                    self._start(conn)
            if not data:
                return
        if conn.state == _RUNNING:
            self._on_reply(conn, data)
        elif conn.state == _EXITING:
            self._fail(conn, "protocol")

    def _on_reply(self, conn: _Conn, data: bytes) -> None:
        now = time.perf_counter_ns()
        if self.scenario == "pipeline":
            replies = data.count(b"\n")
            sent = conn.sent
            if replies > len(sent):
                self._fail(conn, "protocol")
                return
            for _ in range(replies):
                started = sent.popleft()
                if self.measuring:
                    self._count(now - started)
            if replies and not self.stopping:
                sent.extend([now] * replies)
                self._send(conn, self.message * replies)
            return
        data = conn.buffer + data if conn.buffer else data
        expected = self.expected
        if len(data) < len(expected):
            if not expected.startswith(data):
                self._fail(conn, "protocol")
            else:
                conn.buffer = data
            return
        conn.buffer = b""
        if data != expected:
            self._fail(conn, "protocol")
            return
        if self.scenario == "churn":
            conn.state = _EXITING
            self._send(conn, b"exit")
            return
        if self.measuring:
            self._count(now - conn.started)
        if not self.stopping:
            conn.started = now
            self._send(conn, self.message)

    def _on_datagram(self, conn: _Conn) -> None:
        while True:
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                self._error("reset")
                return
            now = time.perf_counter_ns()
            if data != self.expected:
                self._error("protocol")
                continue
            if self.measuring:
                self._count(now - conn.started)
            if self.stopping:
                return
            conn.started = now
            with contextlib.suppress(OSError):  # a lost datagram: the reply timeout sees it
                conn.sock.send(self.message)

    def _check_udp(self, now: int) -> None:
        limit = int(self.udp_timeout * 1e9)
        for conn in list(self.conns.values()):
            if now - conn.started > limit:
                self._error("timeout")
                conn.started = now
                with contextlib.suppress(OSError):
                    conn.sock.send(self.message)

    def _poll(self, timeout: float) -> None:
        conns = self.conns
        udp = self.scenario == "udp"
        for fd, events in self.poller.poll(timeout, 1024):
            conn = conns.get(fd)
            if conn is None:
                continue
            if udp:
                self._on_datagram(conn)
            else:
                self._on_stream(conn, events)

    # The run ---------------------------------------------------------------

    def _setup(self) -> float:
        """Open and greet every connection (lockstep, pipeline) before the clock."""
        started = time.monotonic()
        if self.scenario not in ("lockstep", "pipeline"):
            return 0.0
        opened = 0
        deadline = started + self.setup_timeout
        while time.monotonic() < deadline:
            pending = sum(1 for c in self.conns.values() if c.state in (_CONNECTING, _GREETING))
            while opened < self.connections and pending < self.connect_burst:
                opened += 1
                if self._open() is not None:
                    pending += 1
            if opened >= self.connections and pending == 0:
                break
            self._poll(0.05)
        for conn in list(self.conns.values()):
            if conn.state in (_CONNECTING, _GREETING):
                self._fail(conn, "connect")
        return time.monotonic() - started

    def run(self) -> dict[str, Any]:
        """
        Run the scenario; return the result in the C driver's format.  Ctrl-C
        ends it early with what was measured so far (C{"interrupted": True}).
        """
        setup = 0.0
        self._measure_start = None
        interrupted = False
        try:
            setup = self._setup()
            self._measure()
        except KeyboardInterrupt:
            interrupted = True
        start = self._measure_start
        result = self._result(setup, start)
        if interrupted:
            result["interrupted"] = True
        return result

    def _measure(self) -> None:
        self.measuring = True
        start = self._measure_start = time.perf_counter_ns()
        end = start + int(self.duration * 1e9)
        if self.scenario in ("churn", "udp"):
            for _ in range(self.connections):
                conn = self._open()
                if conn is not None and self.scenario == "udp":
                    self.established += 1
                    self._start(conn)
        else:
            for conn in list(self.conns.values()):
                if conn.state == _READY:
                    self._start(conn)
        next_tick = start + 10_000_000
        next_progress = start + 1_000_000_000
        while not self.stopping:
            self._poll(0.01)
            now = time.perf_counter_ns()
            if now >= end:
                self.stopping = True
            if now >= next_tick:
                next_tick = now + 10_000_000
                if self.scenario == "udp":
                    self._check_udp(now)
                elif self.scenario == "churn":
                    for _ in range(self.connections - len(self.conns)):
                        self._open()
            if self.progress is not None and now >= next_progress:
                next_progress += 1_000_000_000
                self.progress((now - start) / 1e9, self.messages)

    def _result(self, setup: float, start: int | None) -> dict[str, Any]:
        """
        Close every socket; what was measured since C{start} (C{None}: never).
        """
        now = time.perf_counter_ns()
        elapsed = max((now - start) / 1e9, 1e-9) if start is not None else 0.0
        self.poller.close()  # first: whatever Ctrl-C left half-registered goes with it
        for conn in self.conns.values():
            conn.sock.close()
        self.conns.clear()
        return {
            "scenario": self.scenario,
            "framing": self.framing,
            "connections": self.connections,
            "established": self.connections if self.scenario == "churn" else self.established,
            "depth": self.depth,
            "threads": 1,
            "setup_s": round(setup, 3),
            "duration_s": round(elapsed, 3),
            "messages": self.messages,
            "unit": "sessions" if self.scenario == "churn" else "messages",
            "msgs_per_s": round(self.messages / elapsed, 1) if elapsed else 0.0,
            "latency_us": self.histogram.summary(),
            "errors": sum(self.errors.values()),
            "error_detail": dict(self.errors),
        }
