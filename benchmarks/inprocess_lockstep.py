#!/usr/bin/env python3
"""
Instructions per lockstep message of the netepoll reactor and the seed
protocol, measured in one process under callgrind: deterministic where
C{instructions.py} (a server process and a C driver) moves with scheduling.

One process runs the reactor and 50 blocking loopback clients; each round
every client sends C{Tracy} and the reactor is iterated until every client
has its reply.  The process is run twice under callgrind (20 and 420
rounds, C{PYTHONHASHSEED=0}, C{.pyc} compiled first, the factory's
watchdog on a clock that does not move); the difference of the
two totals divided by 20,000 messages is the cost of one message, the
in-process client included (so compare only figures of this script).

    python benchmarks/inprocess_lockstep.py ROOT [ROOT ...]
    python benchmarks/inprocess_lockstep.py --keep DIR ROOT   # callgrind files
    python benchmarks/inprocess_lockstep.py --profile ROOT    # calls/message

C{ROOT} is a source tree holding C{twisted_net/} (a worktree, or a
C{git archive} export of any commit, before or after the restructuring of
issue 9).  See docs/PERFORMANCE.md, section "The restructuring of 1
December 2026: what it cost".
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CLIENTS = 50
SHORT, LONG = 20, 420
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def serve(root: str, rounds: int) -> None:
    """
    Run C{rounds} lockstep rounds of C{CLIENTS} clients against the code of
    C{root}, in this process.
    """
    sys.path.insert(0, root)
    try:
        from twisted_net.netepoll.reactor import NetReactor
    except ImportError:
        from twisted_net.reactor import NetReactor  # before issue 9
    from twisted.internet.main import installReactor
    from twisted.internet.task import Clock

    reactor: Any = NetReactor()
    installReactor(reactor)
    try:
        from twisted_net.server.factory import GreetingFactory
    except ImportError:
        from twisted_net.stream import GreetingFactory  # before issue 9
    from twisted_net.config import ServerConfig

    # The factory's watchdog on a clock of its own that never advances: on
    # the reactor's it would check every session once a second of (slow,
    # load-dependent) wall time under callgrind, which is noise here.
    factory = GreetingFactory("seed", ServerConfig(), clock=Clock())
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    address = ("127.0.0.1", port.getHost().port)
    clients = [socket.create_connection(address) for _ in range(CLIENTS)]
    for _ in range(20):
        reactor.iterate(0)
    for client in clients:
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.recv(100)  # the greeting
    for _ in range(rounds):
        for client in clients:
            client.send(b"Tracy")
        pending = set(range(CLIENTS))
        while pending:
            reactor.iterate(0)
            for index in list(pending):
                try:
                    clients[index].recv(100)
                except BlockingIOError:
                    continue
                pending.discard(index)
    for client in clients:
        client.close()


def collected(root: str, rounds: int, keep: Path | None) -> int:
    """Instructions callgrind counts for one run of C{rounds} rounds."""
    with tempfile.TemporaryDirectory() as scratch:
        name = Path(keep or scratch) / f"callgrind.{Path(root).name}.{rounds}"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={name}",
            sys.executable,
            __file__,
            "--serve",
            root,
            str(rounds),
        ]
        env = dict(os.environ, PYTHONHASHSEED="0")
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        match = COLLECTED.search(done.stderr)
        if match is None:
            raise SystemExit(f"no callgrind total for {root}:\n{done.stderr[-2000:]}")
        return int(match.group(1))


def profile(root: str) -> None:
    """Print the calls per message of each function (cProfile, 200 rounds)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    serve(root, 200)
    profiler.disable()
    stats = pstats.Stats(profiler)
    messages = 200 * CLIENTS
    rows = []
    for (file, line, function), (_, calls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        if calls >= messages // 2:
            rows.append((calls / messages, f"{Path(file).name}:{line}({function})"))
    for per, where in sorted(rows, reverse=True):
        print(f"{per:6.2f}  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="+", metavar="ROOT")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this directory")
    parser.add_argument("--profile", action="store_true", help="calls per message instead")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.roots[0], int(arguments.roots[1]))
        return
    for root in arguments.roots:
        if arguments.profile:
            print(f"== {root}", flush=True)
            if len(arguments.roots) == 1:
                profile(root)
            else:  # one reactor a process
                subprocess.run([sys.executable, __file__, "--profile", root], check=True)
            continue
        compileall.compile_dir(str(Path(root) / "twisted_net"), quiet=1)
        short = collected(root, SHORT, arguments.keep)
        long = collected(root, LONG, arguments.keep)
        per = (long - short) / ((LONG - SHORT) * CLIENTS)
        print(f"{root}: {per:,.0f} instructions/message ({short:,}, {long:,})", flush=True)


if __name__ == "__main__":
    main()
