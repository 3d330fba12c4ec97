#!/usr/bin/env python3
"""
Twisted's own web server, C{twist web}, on C{netepoll} against Twisted's
stock epoll reactor: requests per second for a static file under C{wrk}.

This measures C{netepoll} as a reactor for any Twisted server, not for
C{twist net}.  For each round, each reactor in turn (rotating order) serves
a small file from a temporary directory on 127.0.0.1 and a free port,
pinned to one CPU like C{run.py}'s servers; C{wrk} (Debian package C{wrk}),
pinned to the other CPU, loads it with 50 keep-alive connections for a
fixed number of seconds.  Prints the median requests/s and latency per
reactor, and its ratio to the stock one; and requests per second of server
CPU time, which holds when other programs share the CPUs (as in C{run.py}).

    python benchmarks/web.py                     # 3 rounds of 5 s, netepoll and epoll
    python benchmarks/web.py --rounds 5 --duration 10 --connections 100
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (free ports, CPU pinning, the server starter)

TEMPLATE = "{bin}/twist --log-level warn --reactor {reactor} web --listen {listen} --path {path}"
"""The server: C{twist web}, access log off (it is an info event), one reactor."""

BODY = b"Hello from twist web.\n" * 46  # about 1 KB
"""The static file served."""

REQUESTS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
TOTAL = re.compile(r"^\s+(\d+) requests in ", re.MULTILINE)
PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\b", re.MULTILINE)
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> dict[str, float]:
    """
    Requests/s, p50 and p99 latency (ms) and the error count from C{wrk
    --latency} output.

    @raise ValueError: when the output has no C{Requests/sec} line.
    """
    found = REQUESTS.search(text)
    if found is None:
        raise ValueError(f"no Requests/sec in wrk output: {text[-300:]!r}")
    total = TOTAL.search(text)
    result = {
        "requests_per_s": float(found.group(1)),
        "requests": float(total.group(1)) if total else 0.0,
        "p50_ms": 0.0,
        "p99_ms": 0.0,
    }
    for percent, value, unit in PERCENTILE.findall(text):
        result[f"p{percent}_ms"] = float(value) * UNIT[unit]
    sockets = SOCKET_ERRORS.search(text)
    non_2xx = NON_2XX.search(text)
    errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    result["errors"] = float(errors + (int(non_2xx.group(1)) if non_2xx else 0))
    return result


def serves(host: str, port: int, path: str) -> bool:
    """
    Whether an HTTP server on C{port} answers C{GET path} with 200.
    """
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            return sock.recv(64).startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def one_run(reactor: str, root: Path, options: argparse.Namespace) -> dict[str, float]:
    """
    Start C{twist web} on C{reactor}, load it with C{wrk}, stop it.
    """
    host = "127.0.0.1"
    port = run.free_port(host)
    template = options.template.replace("{reactor}", reactor)
    template = template.replace("{listen}", f"tcp:{port}:interface={host}:backlog=1024")
    template = template.replace("{path}", shlex.quote(str(root)))
    server = run.Server(f"web-{reactor}", template, host, port, options.server_cpu, run.BUILD)
    try:
        deadline = time.monotonic() + 30
        while not serves(host, port, "/index.html"):
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"twist web on {reactor} did not start; see {run.BUILD}/logs")
            time.sleep(0.1)
        command = run.pinned(
            options.driver_cpu,
            [
                options.wrk,
                "--threads",
                "1",
                "--connections",
                str(options.connections),
                "--duration",
                f"{options.duration:g}s",
                "--timeout",
                "5s",
                "--latency",
                f"http://{host}:{port}/index.html",
            ],
        )
        began = server.cpu_seconds()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=options.duration + 60, check=True
        )
        result = parse_wrk(done.stdout)
        cpu = server.cpu_seconds() - began
        result["server_cpu"] = cpu / options.duration
        result["requests_per_cpu_s"] = result["requests"] / cpu if cpu > 0 else 0.0
        if server.process.poll() is not None:
            result["errors"] += 1
        return result
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reactors", default="netepoll,epoll", help="(default: %(default)s)")
    parser.add_argument("--baseline", default="epoll", help="(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="(default: %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds (default: 5)")
    parser.add_argument("--connections", type=int, default=50, help="(default: %(default)s)")
    parser.add_argument("--template", default=TEMPLATE, help="(default: %(default)s)")
    parser.add_argument("--server-cpu", default="0", help="(default: %(default)s)")
    parser.add_argument("--driver-cpu", default="1", help="(default: %(default)s)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk binary")
    options = parser.parse_args(argv)
    if shutil.which(options.wrk) is None:
        raise SystemExit("web.py: error: wrk is not installed (apt-get install wrk)")
    if options.rounds < 1 or not 0 < options.duration <= 600 or options.connections < 1:
        parser.error("--rounds, --duration (at most 600 s) and --connections must be positive")
    options.template = options.template.replace("{bin}", str(Path(sys.executable).parent))
    reactors = [r for r in options.reactors.split(",") if r]
    if options.baseline not in reactors:
        parser.error(f"--baseline {options.baseline} is not one of --reactors")
    run.raise_nofile()
    results: dict[str, list[dict[str, float]]] = {r: [] for r in reactors}
    with tempfile.TemporaryDirectory(prefix="web-bench-") as directory:
        root = Path(directory)
        (root / "index.html").write_bytes(BODY)
        for round_number in range(options.rounds):
            shift = round_number % len(reactors)
            for reactor in reactors[shift:] + reactors[:shift]:
                result = one_run(reactor, root, options)
                results[reactor].append(result)
                print(
                    f"[round {round_number + 1}] {reactor:<10} "
                    f"{result['requests_per_s']:>10,.0f} requests/s  "
                    f"p99 {result['p99_ms']:.2f} ms  errors {result['errors']:.0f}",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        f"twist web, {len(BODY)}-byte file, wrk -t1 -c{options.connections} "
        f"-d{options.duration:g}s, median of {options.rounds} rounds"
    )
    base = statistics.median(r["requests_per_s"] for r in results[options.baseline])
    base_cpu = statistics.median(r["requests_per_cpu_s"] for r in results[options.baseline])
    times = "x " + options.baseline
    print(
        f"{'reactor':<12}{'requests/s':>12}{times:>14}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'srv CPU':>9}{'req/CPU-s':>11}{times:>14}{'errors':>8}"
    )
    for reactor in reactors:
        rows = results[reactor]
        rate = statistics.median(r["requests_per_s"] for r in rows)
        per_cpu = statistics.median(r["requests_per_cpu_s"] for r in rows)
        print(
            f"{reactor:<12}{rate:>12,.0f}{rate / base:>14.2f}"
            f"{statistics.median(r['p50_ms'] for r in rows):>9.2f}"
            f"{statistics.median(r['p99_ms'] for r in rows):>9.2f}"
            f"{statistics.median(r['server_cpu'] for r in rows):>9.0%}"
            f"{per_cpu:>11,.0f}{per_cpu / base_cpu if base_cpu else 0.0:>14.2f}"
            f"{sum(r['errors'] for r in rows):>8.0f}"
        )
    print(f"server: {options.template}")
    return 1 if any(r["errors"] for rows in results.values() for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
