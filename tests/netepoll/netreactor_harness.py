"""
A greeting server on L{twisted_net.netepoll.reactor.NetReactor}, for tests that need
that reactor in a process of its own (the test process runs
pytest-twisted's reactor).

Usage: C{python netreactor_harness.py [seed|line] [adopt]}.  It prints
C{PORT n} once listening on 127.0.0.1 (with C{adopt}, on a socket it bound
itself and handed to C{adoptStreamPort}), then answers each C{status} line on stdin with
one JSON line: open sessions, how many are paused by backpressure, the
bytes their transports hold unsent, and the process's resident memory.
"""

from __future__ import annotations

import json
import socket
import sys

from twisted_net.netepoll.reactor import install

install()

from twisted.internet import reactor, stdio  # noqa: E402
from twisted.protocols.basic import LineReceiver  # noqa: E402

from twisted_net.config import ServerConfig  # noqa: E402
from twisted_net.server.factory import GreetingFactory  # noqa: E402


def resident_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Control(LineReceiver):
    delimiter = b"\n"

    def __init__(self, factory: GreetingFactory) -> None:
        self.factory = factory

    def lineReceived(self, line: bytes) -> None:
        sessions = list(self.factory.sessions)
        unsent = 0
        for session in sessions:
            transport = session.transport
            unsent += len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        report = {
            "sessions": len(sessions),
            "paused": sum(1 for s in sessions if s.paused_since is not None),
            "unsent": unsent,
            "rss_kb": resident_kb(),
            "answered": self.factory.counters.messages_answered,
            "transport": type(sessions[0].transport).__name__ if sessions else None,
        }
        self.sendLine(json.dumps(report).encode())

    def connectionLost(self, reason: object) -> None:
        if reactor.running:
            reactor.stop()


def main() -> None:
    framing = sys.argv[1] if len(sys.argv) > 1 else "seed"
    config = ServerConfig(max_per_peer=0, idle_timeout=0, write_timeout=0, message_timeout=0)
    factory = GreetingFactory(framing, config)
    if "adopt" in sys.argv[2:]:
        bound = socket.socket()
        bound.bind(("127.0.0.1", 0))
        bound.listen(50)
        bound.setblocking(False)
        port = reactor.adoptStreamPort(bound.fileno(), socket.AF_INET, factory)
        bound.close()
    else:
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(f"PORT {port.getHost().port}", flush=True)
    stdio.StandardIO(Control(factory))
    reactor.run()


if __name__ == "__main__":
    main()
