"""
Soak test: mixed and hostile load against one installed C{twist net}.

Usage::

    python benchmarks/soak.py [--seconds 60] [--twist PATH]
    python benchmarks/soak.py --churn 50000      # connect/close cycles, half reset
    python benchmarks/soak.py --push-gb 1         # a peer pushing 1 GB

The default run starts C{twist net} (line framing, short timeouts so that
the idle, message and write deadlines fire within the run) and for
C{--seconds} drives, in bounded threads: lockstep TCP sessions, connection
churn (half of it reset with C{SO_LINGER} 0 in the middle of a reply),
pipelined half-closed sessions, polite UDP peers, a UDP flood, and a hostile
peer cycling through invalid bytes, a 10 MB line, a silent and a dripping
client, a peer that never reads, connections over the per-peer cap, and a
forged datagram looping between two servers (root only).  It then prints
messages answered, errors, and the server's descriptors and RSS (from
C{/proc}) at start and end; nothing may be lost and nothing may leak.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


# The server under test ---------------------------------------------------------


class Server:
    """
    One C{twist --log-format json net} subprocess, its log events and its
    C{/proc} figures.
    """

    def __init__(self, twist: str, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [twist, "--log-format", "json", "net", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.events: list[dict[str, Any]] = []
        self.other_lines: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True).start()
        deadline = time.monotonic() + 20
        while not self.listening("Starting reactor..."):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"twist net did not start: {self.other_lines[-5:]}")
            time.sleep(0.05)

    def _read(self, stream: Any, is_log: bool) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            with self._lock:
                try:
                    self.events.append(json.loads(line) if is_log else {})
                    if not is_log and line:
                        self.other_lines.append(line)
                except ValueError:
                    self.other_lines.append(line)

    def listening(self, log_format: str) -> bool:
        with self._lock:
            return any(e.get("log_format") == log_format for e in self.events)

    def port(self, kind: str) -> int:
        with self._lock:
            for event in self.events:
                if event.get("event") == "listening" and (("endpoint" in event) == (kind == "tcp")):
                    return int(event["address"].rsplit(":", 1)[1])
        raise SystemExit(f"no {kind} port logged")

    @property
    def pid(self) -> int:
        return self.process.pid

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> tuple[int, dict[str, Any]]:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        time.sleep(0.3)
        with self._lock:
            stopped = [e for e in self.events if e.get("event") == "stopped"]
        return code, (stopped[-1]["counters"] if stopped else {})

    def log_summary(self) -> Counter[str]:
        with self._lock:
            return Counter(e.get("event") or e.get("log_format", "?")[:50] for e in self.events)

    def bad_log_lines(self) -> list[Any]:
        with self._lock:
            bad: list[Any] = [
                e
                for e in self.events
                if "log_failure" in e
                or e.get("isError")
                or (e.get("log_level") or {}).get("name") in ("error", "critical")
            ]
            return bad + list(self.other_lines)


# Peers -------------------------------------------------------------------------


class Tally:
    """
    Thread-safe counts of what the peers saw.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def error(self, text: str) -> None:
        with self._lock:
            self.counts["errors"] += 1
            if len(self.errors) < 20:
                self.errors.append(text)


def connect(port: int, source: str = LOOPBACK, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection((LOOPBACK, port), timeout=timeout, source_address=(source, 0))


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def recv_all(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, str]:
    sock.settimeout(limit)
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return bytes(data), "reset"
    except TimeoutError:
        return bytes(data), "timeout"
    return bytes(data), "eof"


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def lockstep(port: int, source: str, stop: threading.Event, tally: Tally) -> None:
    """
    A TCP session that sends one message, waits for its reply, again; it
    reconnects every 500 messages.
    """
    rng = random.Random(source)
    while not stop.is_set():
        try:
            with connect(port, source) as sock:
                if recv_exactly(sock, 10) != b"Welcome!\r\n":
                    tally.error("lockstep: no greeting")
                    continue
                for _ in range(500):
                    if stop.is_set():
                        break
                    message = rng.randbytes(rng.randint(0, 40)).replace(b"\n", b"")
                    message = message.rstrip(b"\r") or b"m"
                    if message == b"exit":
                        message = b"exi"
                    sock.sendall(message + b"\n")
                    expected = b"Hello, " + message + b"!\r\n"
                    if recv_exactly(sock, len(expected)) != expected:
                        tally.error("lockstep: wrong reply")
                        break
                    tally.add("tcp answered")
        except OSError as error:
            tally.error(f"lockstep: {error!r}")


def churn_once(port: int, source: str, cycle: int, tally: Tally) -> None:
    """
    One connect/close cycle; odd cycles send a 4,000-byte message and reset
    the connection while its reply is on the way.
    """
    sock = connect(port, source)
    try:
        if cycle % 2:
            sock.sendall(b"r" * 4000 + b"\n")
            recv_exactly(sock, 10)
            reset(sock)
            tally.add("churn reset")
        else:
            sock.sendall(b"hi\n")
            if recv_exactly(sock, 22) != b"Welcome!\r\nHello, hi!\r\n":
                tally.error("churn: wrong reply")
            else:
                tally.add("tcp answered")
            sock.close()
            tally.add("churn closed")
    except OSError as error:
        sock.close()
        tally.error(f"churn: {error!r}")


def churn(port: int, source: str, stop: threading.Event, tally: Tally) -> None:
    cycle = 0
    while not stop.is_set():
        churn_once(port, source, cycle, tally)
        cycle += 1


def pipelined(port: int, source: str, stop: threading.Event, tally: Tally) -> None:
    """
    2,000 pipelined lines, a half-close, and every reply before the close.
    """
    messages = [b"p%d" % i for i in range(2000)]
    expected = b"Welcome!\r\n" + b"".join(b"Hello, " + m + b"!\r\n" for m in messages)
    while not stop.is_set():
        try:
            with connect(port, source) as sock:
                sock.sendall(b"".join(m + b"\n" for m in messages))
                sock.shutdown(socket.SHUT_WR)
                received, ended = recv_all(sock)
            if received != expected or ended != "eof":
                tally.error(f"pipelined: {len(received)} bytes, {ended}")
            else:
                tally.add("tcp answered", 2000)
        except OSError as error:
            tally.error(f"pipelined: {error!r}")
        stop.wait(0.5)


def udp_polite(port: int, source: str, stop: threading.Event, tally: Tally) -> None:
    """
    Lockstep UDP at about 100 datagrams a second (under the default rate):
    every one must be answered.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(2)
        index = 0
        while not stop.is_set():
            message = b"u%d" % index
            sock.sendto(message, (LOOPBACK, port))
            try:
                if sock.recv(100) != b"Hello, " + message + b"!":
                    tally.error("udp: wrong reply")
                else:
                    tally.add("udp answered")
            except TimeoutError:
                tally.error("udp: reply lost")
            index += 1
            time.sleep(0.01)


def udp_flood(port: int, source: str, stop: threading.Event, tally: Tally) -> None:
    """
    About 2,000 datagrams a second from one source: answered at the
    per-source rate, the rest dropped (and counted by the server).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.setblocking(False)
        while not stop.is_set():
            for _ in range(20):
                sock.sendto(b"flood", (LOOPBACK, port))
                tally.add("udp flood sent")
            try:
                while sock.recv(100):
                    tally.add("udp flood answered")
            except BlockingIOError:
                pass
            time.sleep(0.01)


def forge_loop(first: int, second: int) -> bool:
    """
    Send B a datagram that claims to come from A (raw socket, root only).
    """
    payload = b"ping"
    udp = struct.pack("!HHHH", first, second, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        1,
        0,
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(LOOPBACK),
        socket.inet_aton(LOOPBACK),
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
            raw.sendto(header + udp, (LOOPBACK, 0))
    except PermissionError:
        return False
    return True


def hostile(
    port: int, udp_port: int, stop: threading.Event, tally: Tally, deadline_seconds: float
) -> None:
    """
    Cycle through the hostile cases, checking what each peer sees.
    """
    cases = ["bytes", "long", "idle", "drip", "never-reads", "over-cap"]
    index = 0
    while not stop.is_set():
        case = cases[index % len(cases)]
        index += 1
        try:
            seen = _hostile_case(case, port, deadline_seconds, stop)
        except OSError as error:
            seen = f"{error!r}"
        if seen == "ok":
            tally.add(f"hostile {case}")
        elif seen != "stopped":
            tally.error(f"hostile {case}: {seen}")


def _hostile_case(case: str, port: int, deadline: float, stop: threading.Event) -> str:
    source = "127.0.0.66"
    if case == "bytes":
        with connect(port, source) as sock:
            recv_exactly(sock, 10)
            payload = bytes(range(256)).replace(b"\n", b"")
            sock.sendall(payload + b"\n")
            expected = b"Hello, " + payload.rstrip(b"\r") + b"!\r\n"
            return "ok" if recv_exactly(sock, len(expected)) == expected else "bad echo"
    if case == "long":
        with connect(port, source) as sock:
            sock.setblocking(False)
            sent, received = 0, b""
            ended = None
            limit = time.monotonic() + 10
            while sent < 10 * 1024 * 1024 and ended is None and time.monotonic() < limit:
                try:
                    sent += sock.send(b"a" * 65536)
                except BlockingIOError:
                    time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    ended = "reset"
                try:
                    chunk = sock.recv(65536)
                    received += chunk
                    if not chunk:
                        ended = "eof"
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    ended = "reset"
            good = received == b"Welcome!\r\nerror: message longer than 4096 bytes\r\n"
            return "ok" if good and ended else f"long line: {received[-60:]!r} {ended}"
    if case == "idle":
        with connect(port, source) as sock:
            received, ended = recv_all(sock, deadline + 3)
            return "ok" if received.endswith(b"error: idle timeout\r\n") else f"{received!r}"
    if case == "drip":
        with connect(port, source) as sock:
            recv_exactly(sock, 10)
            sock.settimeout(0.5)
            started = time.monotonic()
            while time.monotonic() - started < deadline + 3:
                try:
                    sock.send(b".")
                    chunk = sock.recv(100)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    return "drip reset"
                if chunk == b"error: message not completed in time\r\n":
                    return "ok"
                return f"drip: {chunk!r}"
            return "drip never closed"
    if case == "never-reads":
        with connect(port, source) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(deadline + 5)
            try:
                while not stop.is_set():
                    sock.sendall(b"x\n" * 32768)
            except (ConnectionResetError, BrokenPipeError):
                return "ok"
            except TimeoutError:
                return "never aborted"
            return "stopped"
    if case == "over-cap":
        held = [connect(port, "127.0.0.67") for _ in range(50)]
        try:
            for sock in held:
                recv_exactly(sock, 10)
            with connect(port, "127.0.0.67") as extra:
                received, _ = recv_all(extra, 5)
            return "ok" if received == b"error: server busy\r\n" else f"over cap: {received!r}"
        finally:
            for sock in held:
                sock.close()
    return "unknown case"


# Runs --------------------------------------------------------------------------


def run_mixed(twist: str, seconds: float) -> int:
    args = [
        "--listen",
        f"tcp:0:interface={LOOPBACK}",
        "--udp",
        f"{LOOPBACK}:0",
        "--framing",
        "line",
        "--idle-timeout",
        "3",
        "--message-timeout",
        "3",
        "--write-timeout",
        "3",
        "--max-per-peer",
        "50",
    ]
    server = Server(twist, args)
    twin = Server(twist, ["--no-tcp", "--udp", f"{LOOPBACK}:0"])
    port, udp_port = server.port("tcp"), server.port("udp")
    start = {"fds": server.fds(), "rss": server.rss_mb(), "cpu": server.cpu_seconds()}
    stop = threading.Event()
    tally = Tally()
    workers = [
        *(
            threading.Thread(target=lockstep, args=(port, f"127.0.0.{10 + i}", stop, tally))
            for i in range(4)
        ),
        *(
            threading.Thread(target=churn, args=(port, f"127.0.0.{20 + i}", stop, tally))
            for i in range(2)
        ),
        threading.Thread(target=pipelined, args=(port, "127.0.0.30", stop, tally)),
        *(
            threading.Thread(target=udp_polite, args=(udp_port, f"127.0.0.{40 + i}", stop, tally))
            for i in range(2)
        ),
        threading.Thread(target=udp_flood, args=(udp_port, "127.0.0.50", stop, tally)),
        threading.Thread(target=hostile, args=(port, udp_port, stop, tally, 3.0)),
    ]
    for worker in workers:
        worker.daemon = True
        worker.start()
    forged = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if forge_loop(twin.port("udp"), udp_port):
            forged += 1
        time.sleep(1)
    stop.set()
    for worker in workers:
        worker.join(15)
    alive = [w.name for w in workers if w.is_alive()]
    settle = time.monotonic() + 10
    while server.fds() > start["fds"] and time.monotonic() < settle:
        time.sleep(0.2)
    end = {"fds": server.fds(), "rss": server.rss_mb(), "cpu": server.cpu_seconds()}
    code, counters = server.stop()
    twin_code, twin_counters = twin.stop()
    elapsed = time.monotonic() - started
    counts = tally.counts
    print(f"soak: {elapsed:.0f} s of mixed load against twist net (pid {server.pid})")
    print(f"  TCP messages answered (peers' count): {counts['tcp answered']}")
    print(f"  UDP datagrams answered, polite peers:  {counts['udp answered']}")
    print(
        f"  UDP flood: {counts['udp flood sent']} sent, {counts['udp flood answered']} "
        "answered (rate-limited)"
    )
    print(f"  churn cycles: {counts['churn closed']} closed + {counts['churn reset']} reset")
    print(
        "  hostile cases passed: "
        + ", ".join(
            f"{name[8:]} {value}"
            for name, value in sorted(counts.items())
            if name.startswith("hostile ")
        )
    )
    print(
        f"  forged datagrams 'from the twin' to the server: {forged}; the twin answered "
        f"{twin_counters.get('datagrams_answered')} of the server's replies and refused "
        f"{twin_counters.get('refusals', {}).get('udp-loop')} as udp-loop"
    )
    print(f"  errors seen by peers: {counts['errors']} {tally.errors[:5]}")
    print(
        f"  server counters: messages {counters.get('messages_answered')}, datagrams "
        f"{counters.get('datagrams_answered')}, open at end "
        f"{counters.get('connections_open')}, total {counters.get('connections_total')}"
    )
    print(f"  refusals: {json.dumps(counters.get('refusals', {}), sort_keys=True)}")
    print(f"  file descriptors: start {start['fds']}, end {end['fds']}")
    print(f"  RSS: start {start['rss']:.1f} MB, end {end['rss']:.1f} MB")
    print(f"  server CPU: {end['cpu'] - start['cpu']:.1f} s")
    print(f"  exit status: server {code}, twin {twin_code}; threads left: {alive}")
    bad = server.bad_log_lines() + twin.bad_log_lines()
    print(f"  unexpected log lines: {len(bad)} {bad[:3]}")
    print(f"  log events: {dict(server.log_summary().most_common(8))}")
    looped = forged and twin_counters.get("datagrams_answered") != 0
    lost = counts["errors"] or bad or end["fds"] != start["fds"] or alive or looped
    return 1 if lost else 0


def run_churn(twist: str, cycles: int) -> int:
    server = Server(
        twist, ["--listen", f"tcp:0:interface={LOOPBACK}", "--no-udp", "--framing", "line"]
    )
    port = server.port("tcp")
    tally = Tally()
    for cycle in range(200):
        churn_once(port, LOOPBACK, cycle, tally)
    time.sleep(0.5)
    start = (server.fds(), server.rss_mb())
    started = time.monotonic()
    threads = []
    for worker in range(4):

        def work(worker: int = worker) -> None:
            for cycle in range(worker, cycles, 4):
                churn_once(port, f"127.0.1.{worker + 1}", cycle, tally)

        threads.append(threading.Thread(target=work))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    settle = time.monotonic() + 10
    while server.fds() > start[0] and time.monotonic() < settle:
        time.sleep(0.2)
    end = (server.fds(), server.rss_mb())
    code, counters = server.stop()
    print(
        f"churn: {cycles} cycles in {elapsed:.1f} s ({cycles / elapsed:.0f}/s), "
        f"{tally.counts['churn reset']} reset mid-reply, errors {tally.counts['errors']} "
        f"{tally.errors[:3]}"
    )
    print(f"  file descriptors: {start[0]} -> {end[0]}; RSS {start[1]:.1f} -> {end[1]:.1f} MB")
    print(
        f"  server: connections total {counters.get('connections_total')}, open at end "
        f"{counters.get('connections_open')}, refusals {counters.get('refusals')}"
    )
    print(f"  log events: {dict(server.log_summary())}")
    print(f"  unexpected log lines: {len(server.bad_log_lines())}; exit status {code}")
    return 1 if tally.counts["errors"] or end[0] != start[0] else 0


def run_push(twist: str, gigabytes: float) -> int:
    """
    A peer that pushes C{gigabytes} of lines: first reading nothing (the
    server must stop reading, its memory bounded), then reading every reply
    (the whole amount goes through with flat memory).
    """
    total = int(gigabytes * (1 << 30))
    server = Server(
        twist,
        [
            "--listen",
            f"tcp:0:interface={LOOPBACK}",
            "--no-udp",
            "--framing",
            "line",
            "--write-timeout",
            "0",
        ],
    )
    port = server.port("tcp")
    chunk = b"x\n" * 32768
    before = server.rss_mb()
    with connect(port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(3)
        sent = 0
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except TimeoutError:
            pass
        peak = server.rss_mb()
        print(
            f"push without reading: server stopped reading after {sent / 1e6:.1f} MB of "
            f"the {total / 1e9:.2f} GB; RSS {before:.1f} -> {peak:.1f} MB"
        )
    time.sleep(1)
    before_through = server.rss_mb()
    peak_through = before_through
    received = [0]
    with connect(port) as sock:

        def reader() -> None:
            while data := sock.recv(1 << 20):
                received[0] += len(data)

        thread = threading.Thread(target=reader)
        thread.start()
        started = time.monotonic()
        sent = 0
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
            if sent % (64 << 20) == 0:
                peak_through = max(peak_through, server.rss_mb())
        sock.shutdown(socket.SHUT_WR)
        thread.join(120)
        elapsed = time.monotonic() - started
    print(
        f"push while reading: {sent / 1e9:.2f} GB in, {received[0] / 1e9:.2f} GB of replies "
        f"out in {elapsed:.1f} s; RSS {before_through:.1f} -> peak {peak_through:.1f} MB"
    )
    code, counters = server.stop()
    print(f"  messages answered {counters.get('messages_answered')}, exit status {code}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--twist", default=str(Path(sys.executable).parent / "twist"))
    parser.add_argument(
        "--churn", type=int, default=0, help="run N connect/close cycles instead of the mixed load"
    )
    parser.add_argument(
        "--push-gb",
        type=float,
        default=0.0,
        help="push this many GB from one peer instead of the mixed load",
    )
    options = parser.parse_args()
    if options.churn:
        return run_churn(options.twist, options.churn)
    if options.push_gb:
        return run_push(options.twist, options.push_gb)
    return run_mixed(options.twist, options.seconds)


if __name__ == "__main__":
    sys.exit(main())
