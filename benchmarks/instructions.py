#!/usr/bin/env python3
"""
Count the user-space instructions each server spends per message, under
Valgrind's callgrind: a measure that, unlike messages per second, does not
move with the machine's load, so variants can be compared while other work
runs (and two runs of one build agree to a fraction of a percent).

Kernel work (the system calls themselves) is not counted: it is the same for
every server that makes the same calls, and C{run.py} measures it.  What is
counted is exactly the interpreter and library overhead this project works to
remove.

Each server is started twice under C{valgrind --tool=callgrind}, once for
C{--count} messages and once for twice as many; the difference of the two
totals, divided by C{--count}, is the cost of one message with start-up,
connection set-up and shutdown cancelled out.

    python benchmarks/instructions.py --servers twisted,uvloop --scenarios lockstep-50
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (the benchmark's own servers, scenarios and driver)

COLLECTED = re.compile(rb"Collected\s*:\s*(\d+)")


def instructions(
    name: str, template: str, scenario: run.Scenario, count: int, driver: Path, build: Path
) -> int:
    """
    Total instructions of one server process that answers C{count}
    messages of C{scenario} and is then stopped.
    """
    host = "127.0.0.1"
    port = run.free_port(host)
    wrapped = "valgrind --tool=callgrind --callgrind-out-file=/dev/null " + template
    server = run.Server(name, wrapped, host, port, None, build)
    log = build / "logs" / f"{name}.log"
    start = log.stat().st_size if log.exists() else 0
    try:
        server.wait_ready(udp=scenario.kind == "udp", timeout=300)
        command = [
            str(driver),
            "--host",
            host,
            "--port",
            str(port),
            *scenario.driver_args(),
            "--count",
            str(count),
            "--duration",
            "600",
            "--udp-timeout",
            "5",
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=900)
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(300)
        server._log.close()
    found = COLLECTED.findall(log.read_bytes()[start:])
    if not found:
        raise RuntimeError(f"{name}: no callgrind total in {log}")
    return int(found[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="twisted,uvloop,threaded")
    parser.add_argument("--scenarios", default="lockstep-50,udp-50")
    parser.add_argument("--server", action="append", default=[], metavar="NAME=TEMPLATE")
    parser.add_argument("--count", type=int, default=20000, help="messages (default: 20000)")
    options = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("instructions.py: error: valgrind is not installed")
    templates = dict(run.SERVERS)
    names = options.servers.split(",")
    for item in options.server:
        key, _, value = item.partition("=")
        templates[key] = value
        if key not in names:
            names.append(key)
    build = run.BUILD
    driver = run.build(build, verbose=False)["driver"]
    print(f"{'scenario':<16}{'server':<22}{'instructions/msg':>18}")
    for scenario_name in options.scenarios.split(","):
        scenario = run.SCENARIOS[scenario_name]
        for name in names:
            began = time.monotonic()
            low = instructions(name, templates[name], scenario, options.count, driver, build)
            high = instructions(name, templates[name], scenario, 2 * options.count, driver, build)
            per = (high - low) / options.count
            print(
                f"{scenario_name:<16}{name:<22}{per:>18,.0f}"
                f"   ({time.monotonic() - began:.0f} s; {shlex.quote(templates[name][:40])})",
                flush=True,
            )


if __name__ == "__main__":
    main()
