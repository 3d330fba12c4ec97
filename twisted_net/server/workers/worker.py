"""
One worker of C{twist net --workers N}, started by L{twisted_net.server.workers.supervisor}.

It installs the supervisor's reactor, sends its log events to the
supervisor as JSON lines on descriptor 3, builds the ordinary service with
L{twisted_net.server.service.build_service}, serves the sockets it inherited instead of
binding its own, and stops gracefully on SIGTERM (SIGINT is the
supervisor's to handle).  If the supervisor dies, the kernel sends the
worker SIGTERM (Linux).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import socket
import sys
from collections.abc import Iterable
from typing import Any, cast

from twisted.logger import ILogObserver, globalLogBeginner, jsonFileLogObserver

from twisted_net.config import ServerConfig
from twisted_net.logs import NamedLogger
from twisted_net.netepoll.lean import import_twisted
from twisted_net.server.endpoints import tls_unneeded
from twisted_net.server.service import (
    DatagramListener,
    StreamListener,
    build_service,
    exit_with,
)
from twisted_net.server.workers.spec import LOG_FD, WorkerSpec

__all__ = ["main"]

log = NamedLogger("twisted_net.worker_main")

_PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> None:
    """
    Run the worker described by the JSON L{WorkerSpec} in C{argv[0]}.
    """
    args = sys.argv[1:] if argv is None else argv
    spec = WorkerSpec.from_json(args[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop_with_supervisor(spec.supervisor_pid)
    problems: list[str] = []

    def install() -> None:
        problem = _install_reactor(spec.reactor)
        if problem:
            problems.append(problem)

    reactor: Any = import_twisted(tls_unneeded(spec.listen), install)
    _log_to_supervisor(spec.index)
    for problem in problems:
        log.warn(
            "Worker {index} runs {reactor}: {problem}",
            index=spec.index,
            reactor=type(reactor).__module__,
            problem=problem,
        )
    service = build_service(
        ServerConfig(**spec.config),
        spec.framing,
        spec.listen,
        spec.udp,
        reactor,
        watch_overflows=False,  # the supervisor watches, once for all
    )
    listeners = _listeners(service)
    if len(listeners) != len(spec.fds):
        exit_with(os.EX_SOFTWARE, "twisted-net worker: listeners and sockets differ")
    for listener, fd in zip(listeners, spec.fds, strict=True):
        inherited = socket.socket(fileno=fd)
        inherited.set_inheritable(False)
        listener.inherited_socket = inherited
    try:
        service.startService()
    except Exception:
        log.failure("Worker {index} cannot serve its sockets", index=spec.index)
        exit_with(os.EX_UNAVAILABLE, "twisted-net worker: cannot serve")
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.callWhenRunning(_stop_once_on_sigterm, reactor)
    log.info(
        "Worker {index} serving (pid {pid})",
        event="worker_started",
        index=spec.index,
        pid=os.getpid(),
    )
    reactor.run()


def _listeners(service: Iterable[object]) -> list[StreamListener | DatagramListener]:
    """
    The listeners of a service built by C{build_service}, in the order it
    adds them: C{--listen} endpoints, then C{--udp} addresses.
    """
    return [child for child in service if isinstance(child, (StreamListener, DatagramListener))]


def _install_reactor(module_name: str) -> str | None:
    """
    Install the reactor of the named module (the supervisor's), or keep
    Twisted's default if it cannot be installed.

    @return: why the supervisor's reactor could not be installed, if so.
    """
    if not module_name or "twisted.internet.reactor" in sys.modules:
        return None
    try:
        module = importlib.import_module(module_name)
        module.install()
    except Exception as error:
        return f"cannot install the supervisor's reactor {module_name}: {error!r}"
    return None


def _log_to_supervisor(index: int) -> None:
    """
    Send every log event, as one JSON line with C{worker} and
    C{worker_pid} fields, to the supervisor's pipe; C{log_system} names the
    worker, so that text logs tell the processes apart.
    """
    stream = open(LOG_FD, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
    write = jsonFileLogObserver(stream, recordSeparator="")
    pid = os.getpid()

    def observe(event: dict[str, Any]) -> None:
        event["worker"] = index
        event["worker_pid"] = pid
        system = event.get("log_system")
        if not system or system == "-":
            level = getattr(event.get("log_level"), "name", "-")
            system = f"{event.get('log_namespace', '-')}#{level}"
        event["log_system"] = f"worker {index} {system}"
        write(event)

    globalLogBeginner.beginLoggingTo([cast(ILogObserver, observe)])


def _stop_with_supervisor(supervisor_pid: int) -> None:
    """
    Ask Linux for SIGTERM when the supervisor dies; stop now if it is
    already gone.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if supervisor_pid and os.getppid() != supervisor_pid:
        sys.exit(os.EX_UNAVAILABLE)


def _stop_once_on_sigterm(reactor: Any) -> None:
    """
    Replace the reactor's SIGTERM handler by one that stops once: the
    supervisor and a service manager may both send SIGTERM, and a second
    C{reactor.stop()} would log an error.
    """
    stopping: list[bool] = []

    def stop() -> None:
        if not stopping:
            stopping.append(True)
            log.info("Worker received SIGTERM, stopping", event="worker_stopping")
            reactor.stop()

    def on_sigterm(number: int, frame: Any) -> None:
        reactor.callFromThread(stop)

    signal.signal(signal.SIGTERM, on_sigterm)


if __name__ == "__main__":
    main()
