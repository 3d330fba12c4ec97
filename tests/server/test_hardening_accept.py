"""
L{twisted_net.server.accepting.GuardedPort} on the real reactor and loopback:
when C{accept} fails for lack of descriptors (C{ENFILE}, which Twisted's
reserve descriptor does not cover) the port backs off instead of spinning,
counts the refusal, and accepts again once C{accept} works.

(C{EMFILE} under a low C{RLIMIT_NOFILE} is tested end to end with the
installed program in L{test_hardening_tcp}.)
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from collections.abc import Generator
from typing import Any

import pytest_twisted
from twisted.internet import reactor, tcp, threads
from twisted.internet.task import deferLater

from twisted_net.server.accepting import GuardedListeningReactor
from twisted_net.server.counters import Counters
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.refusals import RefusalLog

BUSY = b"error: server busy\r\n"


class FailingAccepts:
    """
    A listening socket whose C{accept} fails with C{error} while
    C{failing} is true, counting every call.
    """

    def __init__(self, real: socket.socket, error: int) -> None:
        self.real = real
        self.error = error
        self.failing = True
        self.calls = 0

    def accept(self) -> Any:
        self.calls += 1
        if self.failing:
            raise OSError(self.error, "simulated")
        return self.real.accept()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _connect_and_read(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        return sock.recv(100)


@pytest_twisted.inlineCallbacks
def test_enfile_backs_off_instead_of_spinning() -> Generator[Any, Any, None]:
    counters = Counters()
    factory = GreetingFactory("seed", counters=counters, clock=reactor)
    guarded = GuardedListeningReactor(reactor, RefusalLog(counters, reactor), BUSY)
    port = guarded.listenTCP(0, factory, interface="127.0.0.1")
    failing = FailingAccepts(port.socket, errno.ENFILE)
    port.socket = failing
    try:
        number = port.getHost().port
        waiting = threads.deferToThread(_connect_and_read, number)
        yield deferLater(reactor, 0.5, lambda: None)
        calls_while_failing = failing.calls
        assert 1 <= calls_while_failing <= 20, calls_while_failing
        assert counters.refusals["accept-emfile"] >= 1
        failing.failing = False
        greeting = yield waiting.addTimeout(5, reactor)
        assert greeting == b"Welcome!"
    finally:
        port.socket = failing.real
        for session in list(factory.sessions):
            session.transport.abortConnection()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_enomem_is_counted_and_backs_off() -> Generator[Any, Any, None]:
    counters = Counters()
    factory = GreetingFactory("seed", counters=counters, clock=reactor)
    guarded = GuardedListeningReactor(reactor, RefusalLog(counters, reactor), BUSY)
    port = guarded.listenTCP(0, factory, interface="127.0.0.1")
    failing = FailingAccepts(port.socket, errno.ENOBUFS)
    port.socket = failing
    try:
        waiting = threads.deferToThread(_connect_and_read, port.getHost().port)
        yield deferLater(reactor, 0.3, lambda: None)
        assert failing.calls <= 12
        assert counters.refusals["accept-enomem"] >= 1
        failing.failing = False
        greeting = yield waiting.addTimeout(5, reactor)
        assert greeting == b"Welcome!"
    finally:
        port.socket = failing.real
        for session in list(factory.sessions):
            session.transport.abortConnection()
        yield port.stopListening()


def test_watchdog_survives_a_failing_connection() -> None:
    """
    A connection whose deadline check raises is logged, and the watchdog
    goes on checking the others (a dead loop would switch off every
    deadline).
    """
    from twisted.internet.address import IPv4Address
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport
    from twisted.logger import capturedLogs

    from twisted_net.config import ServerConfig

    clock = Clock()
    factory = GreetingFactory("line", ServerConfig(idle_timeout=5), clock=clock)
    factory.startFactory()
    sessions = []
    for port in (1, 2):
        peer = IPv4Address("TCP", "127.0.0.1", port)
        protocol = factory.buildProtocol(peer)
        assert protocol is not None
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        sessions.append((protocol, transport))
    broken = sessions[0][0]

    def explode(now: float) -> None:
        raise RuntimeError("boom")

    broken.check_deadlines = explode  # type: ignore[method-assign]
    with capturedLogs() as events:
        for _ in range(7):
            clock.advance(1)
    assert any(e.get("log_failure") for e in events)
    assert sessions[1][1].value().endswith(b"error: idle timeout\r\n")
    assert sessions[1][1].disconnecting
    factory.stopFactory()


# The reactor's hooks ------------------------------------------------------------


class MarkedServer(tcp.Server):
    """
    A connection class only L{HookedReactor} offers.
    """


class HookedReactor:
    """
    A reactor view offering both hooks, recording their use.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.accepters: list[socket.socket] = []

    serverTransport = MarkedServer

    def makeAccepter(self, listener: socket.socket) -> Any:
        self.accepters.append(listener)
        return listener.accept

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_hooks_of_the_reactor_are_used() -> None:
    """
    The guarded port makes the connections the reactor offers as
    C{serverTransport}, accepting through its C{makeAccepter}.
    """
    hooked = HookedReactor(reactor)
    guarded = GuardedListeningReactor(hooked, RefusalLog(Counters(), reactor), BUSY)
    port = guarded.listenTCP(0, GreetingFactory("seed", clock=reactor), interface="127.0.0.1")
    try:
        assert port.transport is MarkedServer
        assert hooked.accepters == [port.socket]
    finally:
        port.stopListening()


def test_a_reactor_without_hooks_gets_twisteds_transport() -> None:
    class Plain:
        def __getattr__(self, name: str) -> Any:
            return getattr(reactor, name)

    guarded = GuardedListeningReactor(Plain(), RefusalLog(Counters(), reactor), BUSY)
    port = guarded.listenTCP(0, GreetingFactory("seed", clock=reactor), interface="127.0.0.1")
    try:
        assert port.transport is tcp.Server
        assert port._accept_one == port.socket.accept
    finally:
        port.stopListening()


def test_the_accept_guard_imports_no_reactor() -> None:
    """
    C{server/accepting.py} asks the reactor for its hooks and imports
    nothing of C{netepoll}.
    """
    code = (
        "import sys, twisted_net.server.accepting; "
        "print(sorted(m for m in sys.modules if m.startswith('twisted_net.netepoll')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "[]"


def test_the_peer_address_is_the_one_twisted_builds() -> None:
    """
    The address given to C{buildProtocol} is what C{tcp.Port} would build,
    for an IPv4 and an IPv6 peer, without Twisted's private C{_buildAddr}.
    """
    from twisted_net.server.accepting import _peer

    v4 = tcp.Port(0, None)
    v6 = tcp.Port(0, None, interface="::1")
    assert _peer(("127.0.0.1", 5555)) == v4._buildAddr(("127.0.0.1", 5555))
    assert _peer(("::1", 5555, 0, 0)) == v6._buildAddr(("::1", 5555, 0, 0))
    assert type(_peer(("::1", 5555, 0, 0))).__name__ == "IPv6Address"
