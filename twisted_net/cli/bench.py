"""
C{twisted-net bench}: measure a running greeting server.

The same scenarios as the repository's C{benchmarks/run.py} (lockstep,
pipeline, churn, UDP), against any server given with C{--connect}; live
progress on stderr, a table on stdout, C{--json FILE} for a result file.

The load comes from a small epoll loop in pure Python (no Twisted: the tool
must not share the server's costs or bugs).  One Python process tops out
far below what a fast server can answer (tens of thousands of lockstep
messages a second on one core; see the README's performance section), so
its figures are a floor, not a ceiling.  For exact comparisons, point
C{--driver} at the C driver built by C{benchmarks/run.py}
(C{benchmarks/build/driver}): the result format is the same.

All the load comes from one host, so a server with its production limits
(C{twist net}'s C{--udp-rate 200} datagrams/s and C{--max-per-peer 100}
connections per host) refuses part of it: benchmark a server started with
C{--udp-rate 0 --max-per-peer 0}.  A run whose errors look like those limits
says so on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import textwrap
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from twisted_net.hello import FRAMING_NAMES

__all__ = [
    "SCENARIOS",
    "Histogram",
    "LoadRun",
    "configure_parser",
    "format_table",
    "limit_hints",
    "main",
    "run",
]

SCENARIOS = ("lockstep", "pipeline", "churn", "udp")
"""What C{--scenario} accepts (comma-separated or repeated)."""

_CONNECTING, _GREETING, _READY, _RUNNING, _EXITING, _DEAD = range(6)
_LINEAR_US = 2048
_SUB_BITS = 6


class Histogram:
    """
    Latencies in microsecond buckets up to 2 ms, then 64 buckets per power
    of two (under 1.6% error), like the C driver's.
    """

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.sum_us = 0.0
        self.max_us = 0.0

    def record(self, ns: int) -> None:
        us = ns // 1000
        if us < _LINEAR_US:
            index = us
        else:
            exponent = us.bit_length() - 1
            sub = (us >> (exponent - _SUB_BITS)) & ((1 << _SUB_BITS) - 1)
            index = _LINEAR_US + (exponent - 11) * (1 << _SUB_BITS) + sub
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1
        self.sum_us += ns / 1000
        if ns / 1000 > self.max_us:
            self.max_us = ns / 1000

    @staticmethod
    def _value(index: int) -> float:
        if index < _LINEAR_US:
            return index + 0.5
        relative = index - _LINEAR_US
        exponent = relative // (1 << _SUB_BITS) + 11
        sub = relative % (1 << _SUB_BITS)
        step = 1 << (exponent - _SUB_BITS)
        return (1 << exponent) + sub * step + step / 2

    def percentile(self, fraction: float) -> float:
        """
        The latency (microseconds) below which C{fraction} of them fall.
        """
        if not self.total:
            return 0.0
        rank = min(int(fraction * self.total), self.total - 1)
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen > rank:
                return self._value(index)
        return self.max_us

    def summary(self) -> dict[str, float]:
        return {
            "p50": self.percentile(0.50),
            "p90": self.percentile(0.90),
            "p99": self.percentile(0.99),
            "p999": self.percentile(0.999),
            "max": round(self.max_us, 1),
            "mean": round(self.sum_us / self.total, 1) if self.total else 0.0,
        }


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
        fd = conn.sock.fileno()
        if fd >= 0:
            self.poller.unregister(fd)
            del self.conns[fd]
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
        """
        Open and greet every connection (lockstep, pipeline) before the clock.
        """
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
        Run the scenario; return the result in the C driver's format.
        """
        setup = self._setup()
        self.measuring = True
        start = time.perf_counter_ns()
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
        elapsed = max((time.perf_counter_ns() - start) / 1e9, 1e-9)
        for conn in list(self.conns.values()):
            self._close(conn)
        self.poller.close()
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
            "msgs_per_s": round(self.messages / elapsed, 1),
            "latency_us": self.histogram.summary(),
            "errors": sum(self.errors.values()),
            "error_detail": dict(self.errors),
        }


# The command -----------------------------------------------------------------


def _target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"want HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
        return value

    return convert


class _HelpFormatter(argparse.HelpFormatter):
    """
    Help text wrapped between words only, so that option names such as
    C{--max-per-peer} are never cut at their hyphens.
    """

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """
    Add the C{bench} subcommand's options to C{parser}.
    """
    parser.formatter_class = _HelpFormatter
    parser.description = (
        "Load a running greeting server and report messages/s, latency "
        "percentiles and errors.  The built-in load generator is pure Python "
        "(a floor, not a ceiling); --driver uses the repository's C driver.  "
        "All the load comes from one host: start the server with its per-host "
        "limits off, 'twist net --udp-rate 0 --max-per-peer 0', or its default "
        "limits (200 datagrams/s and 100 connections per host) show up as errors."
    )
    parser.add_argument(
        "--connect",
        "-c",
        type=_target,
        default=("127.0.0.1", 9999),
        metavar="HOST:PORT",
        help="the server (default: 127.0.0.1:9999)",
    )
    parser.add_argument(
        "--scenario",
        "-s",
        action="append",
        metavar="NAME",
        help=f"one of {', '.join(SCENARIOS)}, comma-separated or repeated (default: lockstep)",
    )
    parser.add_argument(
        "--duration",
        "-d",
        type=_positive(float),
        default=5.0,
        help="seconds of load per scenario (default: 5)",
    )
    parser.add_argument(
        "--connections",
        "-n",
        type=_positive(int),
        default=50,
        help="connections (churn: concurrent sessions; udp: sockets); default: 50",
    )
    parser.add_argument(
        "--depth",
        type=_positive(int),
        default=16,
        help="pipeline: messages in flight per connection (default: 16)",
    )
    parser.add_argument(
        "--count", type=_positive(int), default=None, help="stop after this many messages"
    )
    parser.add_argument("--message", default="bench", help="the name sent (default: bench)")
    parser.add_argument(
        "--framing",
        choices=FRAMING_NAMES,
        default="seed",
        help="the server's TCP framing (default: seed)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results here")
    parser.add_argument(
        "--pid",
        type=int,
        help="the server's process id, to report its memory and CPU; "
        "with 'twist net --workers N' give the supervisor's: its "
        "workers (child processes) are added in",
    )
    parser.add_argument(
        "--driver",
        type=Path,
        metavar="PATH",
        help="use this compiled C driver (benchmarks/build/driver) "
        "instead of the Python load generator",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def _scenarios(args: argparse.Namespace) -> list[str]:
    names = [n for spec in (args.scenario or ["lockstep"]) for n in spec.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}: choose from {', '.join(SCENARIOS)}")
    return names


def _stat_fields(pid: int) -> list[str]:
    """
    The fields of C{/proc/PID/stat} after the command name (state first).
    """
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _process_tree(pid: int) -> list[int]:
    """
    C{pid} and every process descended from it (a C{--workers} supervisor
    and its workers), from C{/proc}.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        tree.append(current)
        waiting.extend(children.get(current, []))
    return tree


def _process_stats(pid: int, descendants: bool = True) -> tuple[float, int]:
    """
    CPU seconds used so far and peak RSS (KiB) of a local process, with its
    descendants' added in (a supervisor's workers), unless C{descendants} is
    false.

    @raise OSError: when C{pid} is not a running process.
    """
    cpu, peak = 0.0, 0
    for index, member in enumerate(_process_tree(pid) if descendants else [pid]):
        try:
            stat = _stat_fields(member)
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            if index == 0:
                raise
            continue  # a worker that ended meanwhile
        cpu += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak += int(line.split()[1])
    return cpu, peak


def limit_hints(result: dict[str, Any]) -> list[str]:
    """
    Why a run may have seen errors that are the server's own per-host limits
    at work rather than failures: the load comes from one host.
    """
    detail = result.get("error_detail", {})
    hints = []
    if result["scenario"] == "udp" and result["errors"]:
        hints.append(
            f"{result['errors']} datagram(s) got no reply or a wrong one: likely the server's "
            "UDP rate limit (twist net answers 200 datagrams/s per host by default); "
            "benchmark a server started with --udp-rate 0 --max-per-peer 0"
        )
    elif detail.get("connect") or detail.get("closed") or detail.get("reset"):
        hints.append(
            "connections were refused or closed: if there are more than the server's "
            "--max-per-peer (100 per host by default for twist net), benchmark a server "
            "started with --udp-rate 0 --max-per-peer 0"
        )
    return hints


def _progress_printer(stream: IO[str], scenario: str) -> Callable[[float, int], None]:
    tty = stream.isatty()

    def show(elapsed: float, messages: int) -> None:
        rate = messages / elapsed if elapsed else 0.0
        text = f"[{scenario}] {elapsed:5.1f} s  {messages:>10,} msgs  {rate:>10,.0f}/s"
        stream.write(("\r" + text) if tty else (text + "\n"))
        stream.flush()

    return show


def _run_c_driver(args: argparse.Namespace, scenario: str) -> dict[str, Any]:
    host, port = args.connect
    command = [
        str(args.driver),
        "--host",
        host,
        "--port",
        str(port),
        "--scenario",
        scenario,
        "--connections",
        str(args.connections),
        "--duration",
        str(args.duration),
        "--depth",
        str(args.depth),
        "--message",
        args.message,
        "--framing",
        args.framing,
    ]
    if args.count:
        command += ["--count", str(args.count)]
    if not args.quiet:
        command.append("--progress")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None and process.stdout is not None
    show = _progress_printer(sys.stderr, scenario)
    problems = []
    for line in process.stderr:
        try:
            tick = json.loads(line)
        except ValueError:
            problems.append(line.strip())
            continue
        if isinstance(tick, dict) and "elapsed" in tick:
            show(tick["elapsed"], tick["messages"])
    output = process.stdout.read()
    if process.wait() != 0:
        raise RuntimeError(f"driver failed: {' '.join(problems) or process.returncode}")
    result: dict[str, Any] = json.loads(output)
    return result


def format_table(results: list[dict[str, Any]]) -> str:
    """
    The results as a plain-text table, one row per scenario.
    """
    server_columns = any("server_peak_rss_kib" in r for r in results)
    header = (
        f"{'scenario':<10} {'conns':>6} {'msgs/s':>11} {'p50 ms':>8} {'p90 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'errors':>7}"
    )
    if server_columns:
        header += f" {'srv RSS MB':>10} {'srv CPU':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        latency = r["latency_us"]
        line = (
            f"{r['scenario']:<10} {r['connections']:>6} {r['msgs_per_s']:>11,.0f} "
            f"{latency['p50'] / 1000:>8.2f} {latency['p90'] / 1000:>8.2f} "
            f"{latency['p99'] / 1000:>8.2f} {latency['max'] / 1000:>8.2f} {r['errors']:>7}"
        )
        if server_columns:
            line += (
                f" {r.get('server_peak_rss_kib', 0) / 1024:>10.1f} {r.get('server_cpu', 0.0):>7.0%}"
            )
        lines.append(line)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """
    Run the benchmark described by C{args}; return the exit status.
    """
    try:
        scenarios = _scenarios(args)
    except ValueError as error:
        sys.stderr.write(f"twisted-net: error: {error}\n")
        return 2
    if args.driver is not None and not args.driver.is_file():
        sys.stderr.write(f"twisted-net: error: no driver at {args.driver}\n")
        return 2
    host, port = args.connect
    if args.pid is not None and not Path(f"/proc/{args.pid}/stat").exists():
        sys.stderr.write(f"twisted-net: error: --pid: no process {args.pid}\n")
        return 2
    results = []
    for scenario in scenarios:
        before = _process_stats(args.pid) if args.pid else None
        started = time.monotonic()
        try:
            if args.driver is not None:
                result = _run_c_driver(args, scenario)
            else:
                load = LoadRun(
                    host,
                    port,
                    scenario,
                    args.connections,
                    args.duration,
                    depth=args.depth,
                    message=args.message.encode(),
                    framing=args.framing,
                    count=args.count or 0,
                    progress=None if args.quiet else _progress_printer(sys.stderr, scenario),
                )
                result = load.run()
        except (OSError, RuntimeError, ValueError) as error:
            sys.stderr.write(f"\ntwisted-net: error: bench {scenario}: {error}\n")
            return 1
        if not args.quiet:
            sys.stderr.write("\n" if sys.stderr.isatty() else "")
        result["engine"] = "c" if args.driver is not None else "python"
        if before is not None:
            after = _process_stats(args.pid)
            result["server_cpu"] = (after[0] - before[0]) / (time.monotonic() - started)
            result["server_peak_rss_kib"] = after[1]
        results.append(result)
    print(format_table(results))
    if args.driver is None:
        print("(Python load generator: a floor, not a ceiling; --driver for exact figures)")
    if args.json is not None:
        document = {"target": f"{host}:{port}", "results": results}
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    for result in results:
        if result["messages"]:
            for hint in limit_hints(result):
                sys.stderr.write(f"twisted-net: note: bench {result['scenario']}: {hint}\n")
    failed = [r for r in results if r["messages"] == 0]
    for result in failed:
        detail = ", ".join(f"{k} {v}" for k, v in result["error_detail"].items() if v)
        sys.stderr.write(
            f"twisted-net: error: bench {result['scenario']}: no replies "
            f"from {host}:{port} ({detail or 'no errors either'})\n"
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """
    Run as C{python -m twisted_net.cli.bench} (the same as C{twisted-net bench}).
    """
    parser = argparse.ArgumentParser(prog="twisted-net bench")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
