"""
C{twist net --workers N}: a supervisor process and N worker processes that
share the listening sockets.

The supervisor binds every listening address itself, as a group of N
sockets with C{SO_REUSEPORT} (one per worker), so the kernel spreads new
connections and datagrams over the workers by a hash of the peer's address,
and C{tcp:0} still gives one port, logged like a single process logs it.
Each worker (L{twisted_net.server.workers.worker}) is handed its socket of every group
as an inherited file descriptor and serves it with the ordinary
L{twisted_net.tap.build_service}; its log events travel to the supervisor
over a pipe and are logged there, with a C{worker_pid} field, in whatever
format C{twist} was told to use.

The supervisor keeps its copy of every socket open while it runs, so a
worker that dies loses no connection waiting to be accepted: its
replacement, started after a back-off, accepts them.  On SIGTERM the
supervisor sends SIGTERM to every worker, waits for their graceful drains
(C{--shutdown-timeout} plus L{STOP_MARGIN}), kills what is left, and exits.

Limits that count (C{--max-connections}, C{--max-per-peer}, C{--udp-rate})
apply per worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from twisted.application.runner._exit import ExitStatus, exit
from twisted.application.service import MultiService, Service
from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import CannotListenError, ProcessDone
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.logger import eventFromJSON, globalLogPublisher
from twisted.python.failure import Failure

from twisted_net.address import format_host_port
from twisted_net.config import ServerConfig
from twisted_net.logs import NamedLogger

__all__ = [
    "STOP_MARGIN",
    "ListenRequest",
    "NotShareableError",
    "SharedSockets",
    "WorkerPool",
    "WorkerSpec",
    "bind_group",
    "build_supervisor",
    "describe_listener",
]

STOP_MARGIN = 5.0
"""Seconds a stopping supervisor waits beyond C{--shutdown-timeout}."""

FIRST_FD = 4
"""The worker's first inherited socket descriptor (3 is its log pipe)."""

LOG_FD = 3
"""The descriptor a worker writes its JSON log events to."""

_STABLE_AFTER = 10.0
_RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_GIVE_UP_AFTER = 3


class NotShareableError(ValueError):
    """
    A C{--listen} endpoint whose socket cannot be shared with workers.
    """


@dataclass(frozen=True)
class ListenRequest:
    """
    What an endpoint asked the reactor for: a C{SOCK_STREAM} or
    C{SOCK_DGRAM} socket on C{interface} and C{port}.
    """

    kind: int
    interface: str
    port: int
    backlog: int = 50


class _ListenRecorder:
    """
    A stand-in reactor for one endpoint: records the C{listenTCP} or
    C{listenSSL} call the endpoint makes instead of listening; any other way
    of listening (UNIX sockets, systemd's descriptors) is not shareable.
    """

    def __init__(self, description: str) -> None:
        self.description = description
        self.request: ListenRequest | None = None

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> None:
        self.request = ListenRequest(socket.SOCK_STREAM, interface, port, backlog)

    def listenSSL(
        self, port: int, factory: Any, contextFactory: Any, backlog: int = 50, interface: str = ""
    ) -> None:
        self.listenTCP(port, factory, backlog, interface)

    def __getattr__(self, name: str) -> Any:
        if not name.startswith(("listen", "adopt")):
            raise AttributeError(name)
        raise NotShareableError(
            f"--workers cannot share {self.description!r}: use tcp:, tcp6:, ssl: "
            "or haproxy: endpoints"
        )


def describe_listener(description: str) -> ListenRequest:
    """
    The TCP socket a C{--listen} endpoint string listens on, found by
    letting the project's own endpoint parser listen on a recorder.

    @raise NotShareableError: for endpoints that do not listen on a TCP port.
    @raise ValueError: for strings that are no endpoint at all.
    """
    # Imported here: twisted_net.server.workers.worker imports this module before it
    # imports Twisted's TCP and endpoint modules (twisted_net.netepoll.lean).
    from twisted_net.server.proxy import server_endpoint

    recorder = _ListenRecorder(description)
    endpoint: Any = server_endpoint(recorder, description)
    failures: list[Failure] = []
    endpoint.listen(Factory()).addErrback(failures.append)
    if failures:
        failures[0].raiseException()
    if recorder.request is None:
        raise NotShareableError(f"--workers cannot share {description!r}")
    return recorder.request


def bind_group(request: ListenRequest, count: int) -> list[socket.socket]:
    """
    Bind C{count} sockets to one address with C{SO_REUSEPORT}: the first
    picks the port (C{0}: any free one) and must be its only user, the
    others join it.  The sockets
    are non-blocking, listening (TCP), and close on exec.

    @raise CannotListenError: if the address cannot be bound.
    """
    from twisted.internet.tcp import _resolveIPv6

    family = socket.AF_INET6 if isIPv6Address(request.interface) else socket.AF_INET
    try:
        address: Any = (
            _resolveIPv6(request.interface, request.port)
            if family == socket.AF_INET6
            else (request.interface, request.port)
        )
    except OSError as error:
        raise CannotListenError(request.interface, request.port, error) from None
    group: list[socket.socket] = []
    try:
        for _ in range(count):
            member = socket.socket(family, request.kind)
            group.append(member)
            if request.kind == socket.SOCK_STREAM:
                member.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if len(group) == 1:
                # The first binds alone, so that a port already held, even
                # by another SO_REUSEPORT group (a second instance), fails
                # as it would for a single process, instead of being shared.
                member.bind(address)
                member.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            else:
                member.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                member.bind(address)
            if request.kind == socket.SOCK_STREAM:
                member.listen(request.backlog)
            member.setblocking(False)
            address = member.getsockname()
    except OSError as error:
        for member in group:
            member.close()
        raise CannotListenError(request.interface, request.port, error) from None
    return group


class SharedSockets(Service):
    """
    Binds the socket groups of every listener when started, logs each
    address as a single process would, and closes them when stopped.

    @ivar groups: per listener, in C{--listen} then C{--udp} order, its
        sockets (one per worker).
    """

    log = NamedLogger("twisted_net.workers")

    def __init__(
        self, listen: list[str], udp: list[tuple[str, int]], framing: str, count: int
    ) -> None:
        self.listen = listen
        self.udp = udp
        self.framing = framing
        self.count = count
        self.groups: list[list[socket.socket]] = []

    def startService(self) -> None:
        try:
            for description in self.listen:
                group = bind_group(describe_listener(description), self.count)
                self.groups.append(group)
                self.log.info(
                    "Listening on {endpoint} (TCP, {framing} framing) at {address}",
                    event="listening",
                    transport="tcp",
                    endpoint=description,
                    framing=self.framing,
                    address=_printable(group[0]),
                )
            for host, port in self.udp:
                group = bind_group(ListenRequest(socket.SOCK_DGRAM, host, port), self.count)
                self.groups.append(group)
                self.log.info(
                    "Listening on UDP at {address}",
                    event="listening",
                    transport="udp",
                    address=_printable(group[0]),
                )
        except BaseException:
            self._close()
            raise
        super().startService()

    def sockets_of(self, index: int) -> list[socket.socket]:
        """
        The sockets worker C{index} serves, one per listener.
        """
        return [group[index] for group in self.groups]

    def stopService(self) -> None:
        super().stopService()
        self._close()

    def _close(self) -> None:
        groups, self.groups = self.groups, []
        for group in groups:
            for member in group:
                member.close()


def _printable(member: socket.socket) -> str:
    host, port = member.getsockname()[:2]
    return format_host_port(host, port)


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


class _Supervisor(MultiService):
    """
    The service of C{twist net --workers N}: the shared sockets, then the
    workers; a socket that cannot be bound ends the program with one clear
    line and a non-zero status.
    """

    def startService(self) -> None:
        try:
            super().startService()
        except (CannotListenError, OSError, ValueError) as error:
            for child in reversed(list(self)):
                if child.running:
                    child.stopService()
            exit(ExitStatus.EX_UNAVAILABLE, f"twist net: error: cannot listen: {error}")


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
