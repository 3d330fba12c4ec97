"""
C{twist net --workers N}: a supervisor process and N worker processes that
share the listening sockets.

The supervisor binds every listening address itself, as a group of N
sockets with C{SO_REUSEPORT} (one per worker), so the kernel spreads new
connections and datagrams over the workers by a hash of the peer's address,
and C{tcp:0} still gives one port, logged like a single process logs it.
Each worker (L{twisted_net.server.workers.worker}) is handed its socket of
every group as an inherited file descriptor
(L{twisted_net.server.workers.sockets}) and serves it with the ordinary
L{twisted_net.server.service.build_service}; its log events travel to the supervisor
over a pipe and are logged there, with a C{worker_pid} field, in whatever
format C{twist} was told to use.

The supervisor keeps its copy of every socket open while it runs, so a
worker that dies loses no connection waiting to be accepted: its
replacement, started after a back-off, accepts them.  On SIGTERM the
supervisor sends SIGTERM to every worker
(L{twisted_net.server.workers.pool}), waits for their graceful drains
(C{--shutdown-timeout} plus L{STOP_MARGIN}), kills what is left, and exits.

Limits that count (C{--max-connections}, C{--max-per-peer}, C{--udp-rate})
apply per worker.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from twisted.application.service import MultiService

from twisted_net.config import ServerConfig
from twisted_net.server.overflows import ListenOverflowWatch
from twisted_net.server.service import ExitOnListenFailure
from twisted_net.server.workers.pool import WorkerPool
from twisted_net.server.workers.sockets import SharedSockets
from twisted_net.server.workers.spec import WorkerSpec

__all__ = ["STOP_MARGIN", "build_supervisor"]

STOP_MARGIN = 5.0
"""Seconds a stopping supervisor waits beyond C{--shutdown-timeout}."""


class _Supervisor(ExitOnListenFailure):
    """
    The service of C{twist net --workers N}: the shared sockets, then the
    workers; a socket that cannot be bound ends the program with one clear
    line and a non-zero status (L{ExitOnListenFailure}).
    """


def build_supervisor(
    config: ServerConfig,
    framing: str,
    listen: list[str],
    udp: list[tuple[str, int]],
    count: int,
    reactor: Any = None,
) -> MultiService:
    """
    The supervisor of C{count} workers that serve C{listen} and C{udp}.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    supervisor = _Supervisor()
    sockets = SharedSockets(listen, udp, framing, count)
    sockets.setServiceParent(supervisor)
    if listen:
        ListenOverflowWatch(reactor).setServiceParent(supervisor)
    template = WorkerSpec(
        index=0,
        config=asdict(config),
        framing=framing,
        listen=list(listen),
        udp=list(udp),
        reactor=type(reactor).__module__,
        supervisor_pid=os.getpid(),
    )
    WorkerPool(
        count, template, sockets, reactor, config.shutdown_timeout + STOP_MARGIN
    ).setServiceParent(supervisor)
    return supervisor
