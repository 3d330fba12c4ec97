"""
The worker processes of C{twist net --workers N}: L{WorkerPool} starts them,
restarts one that dies (after a back-off), relays their log events (sent as
JSON lines on L{twisted_net.server.workers.spec.LOG_FD}) to the supervisor's
log, with their C{worker_pid} field, and on stop sends every worker SIGTERM,
waits for their graceful drains and kills stragglers.
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import asdict
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import eventFromJSON, globalLogPublisher
from twisted.python.failure import Failure

from twisted_net.logs import NamedLogger
from twisted_net.server.workers.sockets import SharedSockets
from twisted_net.server.workers.spec import FIRST_FD, LOG_FD, WorkerSpec, worker_command

__all__ = ["WorkerPool"]

_STABLE_AFTER = 10.0
_RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_GIVE_UP_AFTER = 3


class _WorkerProcess(ProcessProtocol):
    """
    One running worker: relays its log events, reports when it serves and
    when it ends.
    """

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.started_at = pool.reactor.seconds()
        self.pid: int | None = None
        self.serving = False
        self._partial = b""

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._relay(line)

    def _relay(self, line: bytes) -> None:
        try:
            event = eventFromJSON(line.decode("utf-8"))
        except ValueError:
            self.pool.log.warn(
                "Worker {index}: {line}", index=self.index, line=line.decode("utf-8", "replace")
            )
            return
        if event.get("event") == "worker_started" and not self.serving:
            self.serving = True
            self.pool.worker_serving(self)
        globalLogPublisher(event)

    def processEnded(self, reason: Failure) -> None:
        self.pool.worker_ended(self, reason)


class WorkerPool(Service):
    """
    Starts the workers, restarts one that ends while the pool runs (after a
    back-off that grows while restarts fail fast), and on stop sends every
    worker SIGTERM and waits for all, killing stragglers after
    C{stop_timeout}.
    """

    log = NamedLogger("twisted_net.workers")

    def __init__(
        self,
        count: int,
        template: WorkerSpec,
        sockets: SharedSockets,
        reactor: IReactorProcess,
        stop_timeout: float,
    ) -> None:
        self.count = count
        self.template = template
        self.sockets = sockets
        self.reactor: Any = reactor
        self.stop_timeout = stop_timeout
        self.workers: dict[int, Any] = {}
        self.protocols: dict[int, _WorkerProcess] = {}
        self._failures = [0] * count
        self._restarts: dict[int, Any] = {}
        self._ended: list[Deferred[None]] = []
        self._ever_served = False

    def startService(self) -> None:
        super().startService()
        self.log.info(
            "Supervising {count} workers with {reactor}",
            event="supervisor_starting",
            count=self.count,
            reactor=self.template.reactor,
        )
        for index in range(self.count):
            self.spawn(index)

    def spawn(self, index: int) -> None:
        """
        Start worker C{index} with its sockets as descriptors 4, 5, ...
        """
        self._restarts.pop(index, None)
        members = self.sockets.sockets_of(index)
        child_fds: dict[int, int | str] = {0: 0, 1: 1, 2: 2, LOG_FD: "r"}
        for offset, member in enumerate(members):
            child_fds[FIRST_FD + offset] = member.fileno()
        spec = WorkerSpec(
            **{
                **asdict(self.template),
                "index": index,
                "fds": list(range(FIRST_FD, FIRST_FD + len(members))),
            }
        )
        args, env = worker_command(spec)
        protocol = _WorkerProcess(self, index)
        self.protocols[index] = protocol
        process = self.reactor.spawnProcess(protocol, args[0], args, env=env, childFDs=child_fds)
        protocol.pid = process.pid
        self.workers[index] = process

    def worker_serving(self, protocol: _WorkerProcess) -> None:
        self._ever_served = True

    def worker_ended(self, protocol: _WorkerProcess, reason: Failure) -> None:
        index = protocol.index
        if self.protocols.get(index) is not protocol:
            return
        del self.protocols[index]
        self.workers.pop(index, None)
        pid = protocol.pid
        status = _describe_exit(reason)
        if not self.running:
            self.log.info(
                "Worker {index} (pid {pid}) stopped: {status}",
                event="worker_stopped",
                index=index,
                pid=pid,
                status=status,
            )
            if not self.protocols:
                ended, self._ended = self._ended, []
                for waiter in ended:
                    waiter.callback(None)
            return
        lived = self.reactor.seconds() - protocol.started_at
        if protocol.serving and lived >= _STABLE_AFTER:
            self._failures[index] = 0
        failures = self._failures[index]
        self._failures[index] = failures + 1
        if not self._ever_served and failures + 1 >= _GIVE_UP_AFTER:
            self.log.critical(
                "Worker {index} (pid {pid}) ended before serving {times} times ({status}); "
                "giving up",
                event="workers_failed",
                index=index,
                pid=pid,
                times=failures + 1,
                status=status,
            )
            self.reactor.stop()
            return
        delay = _RESTART_DELAYS[min(failures, len(_RESTART_DELAYS) - 1)]
        self.log.warn(
            "Worker {index} (pid {pid}) ended unexpectedly: {status}; restarting in {delay}s",
            event="worker_died",
            index=index,
            pid=pid,
            status=status,
            delay=delay,
        )
        self._restarts[index] = self.reactor.callLater(delay, self.spawn, index)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        for call in self._restarts.values():
            if call.active():
                call.cancel()
        self._restarts.clear()
        if not self.protocols:
            return succeed(None)
        self.log.info(
            "Stopping {count} workers", event="workers_stopping", count=len(self.protocols)
        )
        for process in self.workers.values():
            _signal(process, signal.SIGTERM)
        ended: Deferred[None] = Deferred()
        self._ended.append(ended)
        killer = self.reactor.callLater(self.stop_timeout, self._kill_stragglers)

        def cancel_killer(result: None) -> None:
            if killer.active():
                killer.cancel()

        return ended.addCallback(cancel_killer)

    def _kill_stragglers(self) -> None:
        for index, process in self.workers.items():
            self.log.warn(
                "Worker {index} (pid {pid}) did not stop in time; killing it",
                event="worker_killed",
                index=index,
                pid=self.protocols[index].pid,
            )
            _signal(process, signal.SIGKILL)


def _signal(process: Any, number: int) -> None:
    with contextlib.suppress(Exception):  # it has ended already
        process.signalProcess(number)


def _describe_exit(reason: Failure) -> str:
    if reason.check(ProcessDone):
        return "exit status 0"
    value: Any = reason.value
    if getattr(value, "signal", None):
        return f"killed by signal {value.signal}"
    return f"exit status {getattr(value, 'exitCode', '?')}"
