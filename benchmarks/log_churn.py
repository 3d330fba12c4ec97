#!/usr/bin/env python3
"""
What logging costs a churn session, in user-space instructions.

One process runs the server (C{GreetingFactory} on the netepoll reactor,
with C{twist}'s logging set-up: a level filter in front of a text or JSON
file observer) and its clients (connect, C{Welcome!}, one message, C{exit}),
in batches of 10, driving the reactor by hand: nothing depends on timing, so
callgrind's count is the same from run to run.  C{--callgrind} runs that
twice (100 and 500 sessions) and prints the difference per session::

    python benchmarks/log_churn.py --callgrind --format json --level info
    python benchmarks/log_churn.py --callgrind --format json --level info --stock
    python benchmarks/log_churn.py --callgrind --format json --level warn

C{--stock} writes with Twisted's own observers instead of the batched ones of
L{twisted_net.logoutput}; C{--root DIR} measures the tree in DIR.  The
figures include the clients' share, the same for every variant.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
from typing import Any

BATCH = 10


def serve_sessions(sessions: int, format: str, level: str, stock: bool) -> None:
    """Run C{sessions} churn sessions in this process."""
    from twisted.internet.main import installReactor

    from twisted_net.netepoll.reactor import NetReactor

    reactor = NetReactor()
    installReactor(reactor)
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        jsonFileLogObserver,
        textFileLogObserver,
    )

    from twisted_net.config import ServerConfig
    from twisted_net.logoutput import BUFFERED
    from twisted_net.server.factory import GreetingFactory

    out = tempfile.TemporaryFile("w")  # noqa: SIM115 (open while the sessions run)
    if format == "noop":
        observer: Any = lambda event: None  # noqa: E731
    else:
        factory: Any = {"json": jsonFileLogObserver, "text": textFileLogObserver}[format]
        observer = (factory if stock else BUFFERED[factory])(out)
    reactor.running = True  # as under twist; the loop is driven by hand below
    threshold = LogLevel.levelWithName(level)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(observer, [LogLevelFilterPredicate(defaultLogLevel=threshold)])],
        redirectStandardIO=False,
        discardBuffer=True,
    )
    config = ServerConfig(max_per_peer=0, max_connections=0, log_connections=level == "info")
    port = reactor.listenTCP(
        0, GreetingFactory("seed", config, clock=reactor), interface="127.0.0.1", backlog=1024
    )
    address = ("127.0.0.1", port.getHost().port)

    def until(client: socket.socket, wanted: bytes | None) -> None:
        received = b""
        client.setblocking(False)
        for _ in range(1000):
            reactor.iterate(0)
            try:
                data = client.recv(100)
            except BlockingIOError:
                continue
            if not data or (wanted is not None and wanted in (received := received + data)):
                return
        raise SystemExit("a session got no answer in 1,000 iterations")

    for _ in range(sessions // BATCH):
        clients = [socket.create_connection(address) for _ in range(BATCH)]
        for wanted, message in [(b"Welcome!", b"Tracy"), (b"Hello, Tracy!", b"exit")]:
            for client in clients:
                until(client, wanted)
            for client in clients:
                client.setblocking(True)
                client.send(message)
        for client in clients:
            until(client, None)
            client.close()
        for _ in range(5):
            reactor.iterate(0)
    out.close()


def instructions(argv: list[str], sessions: int) -> int:
    """User-space instructions of this script for C{sessions} sessions."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        *argv,
        "--sessions",
        str(sessions),
    ]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
    return int(re.findall(r"Collected : (\d+)", result.stderr)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=["json", "text", "noop"], default="json")
    parser.add_argument("--level", choices=["info", "warn"], default="info")
    parser.add_argument("--stock", action="store_true", help="Twisted's own file observers")
    parser.add_argument("--root", help="import twisted_net from this source tree")
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--callgrind", action="store_true", help="print instructions/session")
    options = parser.parse_args()
    if options.callgrind:
        argv = [a for a in sys.argv[1:] if a != "--callgrind"]
        few, many = instructions(argv, 100), instructions(argv, 500)
        print(f"{' '.join(argv)}: {(many - few) // 400} instructions per session")
        return
    if options.root:
        sys.path.insert(0, options.root)
    serve_sessions(options.sessions, options.format, options.level, options.stock)


if __name__ == "__main__":
    main()
