"""
What a worker of C{twist net --workers N} is told: its L{WorkerSpec}, passed
as JSON on the command line L{worker_command} builds, and the descriptors it
inherits (L{LOG_FD}, then its sockets from L{FIRST_FD}).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FIRST_FD", "LOG_FD", "WorkerSpec", "worker_command"]

FIRST_FD = 4
"""The worker's first inherited socket descriptor (3 is its log pipe)."""

LOG_FD = 3
"""The descriptor a worker writes its JSON log events to."""


@dataclass
class WorkerSpec:
    """
    Everything a worker needs to serve, passed on its command line as JSON.

    @ivar fds: the worker's inherited socket per listener, in C{listen}
        then C{udp} order.
    @ivar reactor: the module of the supervisor's reactor; the worker
        installs the same.
    """

    index: int
    config: dict[str, Any]
    framing: str
    listen: list[str]
    udp: list[tuple[str, int]]
    fds: list[int] = field(default_factory=list)
    reactor: str = ""
    supervisor_pid: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        fields = json.loads(text)
        fields["udp"] = [(host, port) for host, port in fields["udp"]]
        return cls(**fields)


def worker_command(spec: WorkerSpec) -> tuple[list[str], dict[str, str]]:
    """
    The command line and environment of a worker: this Python, importing
    modules from exactly where the supervisor imports them.
    """
    bootstrap = (
        "import sys; del sys.path[0]; from twisted_net.server.workers.worker import main; main()"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
    return [sys.executable, "-c", bootstrap, spec.to_json()], env
