#!/usr/bin/env python3
"""
Instructions per lockstep message (or per churn session) of the netepoll
reactor and the seed protocol, measured in one process under callgrind:
deterministic where C{instructions.py} (a server process and a C driver)
moves with scheduling.

One process runs the reactor and 50 non-blocking loopback clients.  In a
lockstep round every client sends C{Tracy} and the reactor is iterated
until every client has its reply; in a churn round 50 clients connect, are
greeted, send C{Tracy}, then C{exit}, and are closed.  The process is run
twice under callgrind (20 and 420 lockstep rounds, 10 and 110 churn rounds;
C{PYTHONHASHSEED=0}, C{.pyc} compiled first, the factory's watchdog on a
clock that does not move); the difference of the two totals divided by the
messages (sessions) between them is the cost of one, the in-process
clients included (so compare only figures of this script).

    python benchmarks/inprocess_lockstep.py ROOT [ROOT ...]
    python benchmarks/inprocess_lockstep.py --scenario churn ROOT [ROOT ...]
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
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CLIENTS = 50
ROUNDS = {"lockstep": (20, 420), "churn": (10, 110)}
"""The short and the long run of each scenario, in rounds of C{CLIENTS}."""
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def serve(root: str, scenario: str, rounds: int) -> None:
    """
    Run C{rounds} rounds of C{scenario} with C{CLIENTS} clients against the
    code of C{root}, in this process.
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
    if scenario == "churn":
        for _ in range(rounds):
            session(reactor, address)
        return
    clients = connect(reactor, address)
    for _ in range(rounds):
        exchange(reactor, clients, b"Tracy", b"Hello, Tracy!")
    for client in clients:
        client.close()


def connect(reactor: Any, address: tuple[str, int]) -> list[socket.socket]:
    """C{CLIENTS} connections, each greeted."""
    clients = [socket.create_connection(address) for _ in range(CLIENTS)]
    for client in clients:
        client.setblocking(False)
    answers(reactor, clients, b"Welcome!")
    return clients


def session(reactor: Any, address: tuple[str, int]) -> None:
    """One churn round: C{CLIENTS} sessions of one message and C{exit}."""
    clients = connect(reactor, address)
    exchange(reactor, clients, b"Tracy", b"Hello, Tracy!")
    exchange(reactor, clients, b"exit", b"")
    for client in clients:
        client.close()


def exchange(reactor: Any, clients: list[socket.socket], message: bytes, answer: bytes) -> None:
    """Every client sends C{message}, then waits for C{answer}."""
    for client in clients:
        client.send(message)
    answers(reactor, clients, answer)


def answers(reactor: Any, clients: list[socket.socket], answer: bytes) -> None:
    """Iterate the reactor until every client has read C{answer}."""
    pending = set(range(CLIENTS))
    for _ in range(100_000):
        reactor.iterate(0)
        for index in list(pending):
            try:
                got = clients[index].recv(100)
            except BlockingIOError:
                continue
            if got != answer:
                raise SystemExit(f"expected {answer!r}, got {got!r}")
            pending.discard(index)
        if not pending:
            return
    raise SystemExit(f"{len(pending)} clients still wait for {answer!r}")


def collected(root: str, scenario: str, rounds: int, keep: Path | None) -> int:
    """Instructions callgrind counts for one run of C{rounds} rounds."""
    with tempfile.TemporaryDirectory() as scratch:
        name = Path(keep or scratch) / f"callgrind.{Path(root).name}.{scenario}.{rounds}"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={name}",
            sys.executable,
            __file__,
            "--serve",
            f"--scenario={scenario}",
            root,
            str(rounds),
        ]
        env = dict(os.environ, PYTHONHASHSEED="0")
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        match = COLLECTED.search(done.stderr)
        if match is None:
            raise SystemExit(f"no callgrind total for {root}:\n{done.stderr[-2000:]}")
        return int(match.group(1))


def profile(root: str, scenario: str) -> None:
    """Print the calls per message (session) of each function (cProfile)."""
    import cProfile
    import pstats

    rounds = ROUNDS[scenario][1] // 2
    profiler = cProfile.Profile()
    profiler.enable()
    serve(root, scenario, rounds)
    profiler.disable()
    stats = pstats.Stats(profiler)
    messages = rounds * CLIENTS
    rows = []
    for (file, line, function), (_, calls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        if calls >= messages // 2:
            rows.append((calls / messages, f"{Path(file).name}:{line}({function})"))
    for per, where in sorted(rows, reverse=True):
        print(f"{per:6.2f}  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="+", metavar="ROOT")
    parser.add_argument("--scenario", choices=sorted(ROUNDS), default="lockstep")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this directory")
    parser.add_argument("--profile", action="store_true", help="calls per message instead")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    scenario = arguments.scenario
    if arguments.serve:
        serve(arguments.roots[0], scenario, int(arguments.roots[1]))
        return
    unit = "session" if scenario == "churn" else "message"
    for root in arguments.roots:
        if arguments.profile:
            print(f"== {root}", flush=True)
            if len(arguments.roots) == 1:
                profile(root, scenario)
            else:  # one reactor a process
                command = [sys.executable, __file__, "--profile", f"--scenario={scenario}", root]
                subprocess.run(command, check=True)
            continue
        compileall.compile_dir(str(Path(root) / "twisted_net"), quiet=1)
        short_rounds, long_rounds = ROUNDS[scenario]
        short = collected(root, scenario, short_rounds, arguments.keep)
        long = collected(root, scenario, long_rounds, arguments.keep)
        per = (long - short) / ((long_rounds - short_rounds) * CLIENTS)
        print(
            f"{root} {scenario}: {per:,.0f} instructions/{unit} ({short:,}, {long:,})", flush=True
        )


if __name__ == "__main__":
    main()
