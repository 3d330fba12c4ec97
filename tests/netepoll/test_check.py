"""
The self-check of L{twisted_net.netepoll.check} and the checked
L{twisted_net.netepoll.install}: on this Twisted nothing is missing; a
renamed module constant, a renamed attribute of the epoll reactor, a changed
method signature or new transport state are each named, and C{install} then
logs one warning and installs Twisted's epoll reactor.  End to end, the
installed C{twist net} on a Twisted whose internals moved (simulated by
C{moved_internals/sitecustomize.py}) still serves and stops on SIGTERM.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import abstract, epollreactor, main, posixbase, tcp
from twisted.internet.epollreactor import EPollReactor
from twisted.logger import capturedLogs

import twisted_net.netepoll
from twisted_net.netepoll import check
from twisted_net.netepoll.reactor import NetReactor

LOOPBACK = "127.0.0.1"
MOVED_INTERNALS = Path(__file__).parent / "moved_internals"


def test_nothing_is_missing_on_this_twisted() -> None:
    assert check.problems() == []
    reactor = EPollReactor()
    try:
        assert check.instance_problems(reactor) == []
    finally:
        reactor._poller.close()


def test_a_renamed_module_constant_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(posixbase, "_NO_FILEDESC")
    assert check.problems() == ["twisted.internet.posixbase._NO_FILEDESC is missing"]


def test_a_renamed_class_attribute_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(abstract.FileDescriptor, "offset")
    assert check.problems() == ["twisted.internet.tcp.Server.offset is missing"]


def test_a_renamed_reactor_attribute_is_named() -> None:
    class Renamed:
        def __init__(self) -> None:
            self._epoll = object()
            self._reads: set[int] = set()
            self._writes: set[int] = set()
            self._selectables: dict[int, Any] = {}

    assert check.instance_problems(Renamed()) == [
        "twisted.internet.epollreactor.EPollReactor()._poller is missing"
    ]


def test_a_reshaped_reactor_attribute_is_named() -> None:
    class Reshaped:
        def __init__(self) -> None:
            self._poller = object()
            self._reads: list[int] = []
            self._writes: set[int] = set()
            self._selectables: dict[int, Any] = {}

    assert check.instance_problems(Reshaped()) == [
        "twisted.internet.epollreactor.EPollReactor()._poller has no poll, register,"
        " unregister, modify",
        "twisted.internet.epollreactor.EPollReactor()._reads is a list, not a set",
    ]


def test_a_changed_signature_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def _closeSocket(self: Any, orderly: bool, how: int = 0) -> None:
        pass

    monkeypatch.setattr(tcp.Connection, "_closeSocket", _closeSocket)
    assert check.problems() == [
        "twisted.internet.tcp.Connection._closeSocket takes (self, orderly, how),"
        " not (self, orderly)"
    ]


def test_new_transport_state_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    State Twisted's C{tcp.Server.__init__} sets and the write-through
    transport's own C{__init__} would not.
    """
    original = tcp.Server.__init__

    @functools.wraps(original)
    def init(self: Any, *args: Any) -> None:
        original(self, *args)
        self._newState = 1

    monkeypatch.setattr(tcp.Server, "__init__", init)
    assert check.problems() == ["twisted.internet.tcp.Server sets _newState (new state)"]


def test_every_state_the_transport_sets_is_twisteds() -> None:
    """
    The shape the check allows is the shape Twisted's C{tcp.Server} has: what
    its C{__init__} sets is a subset of L{check.SERVER_STATE}, and not by
    accident one much smaller.
    """
    assert "_tempDataBuffer" in check.SERVER_STATE
    assert list(check._server_state_problems()) == []


class Installed:
    """
    Records what C{install} installs, instead of installing it.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reactors: list[Any] = []
        self.stock = 0
        monkeypatch.setattr(main, "installReactor", self.reactors.append)
        monkeypatch.setattr(epollreactor, "install", self.install_stock)

    def install_stock(self) -> None:
        self.stock += 1

    def close(self) -> None:
        for reactor in self.reactors:
            reactor._poller.close()


def test_install_installs_netepoll_when_nothing_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = Installed(monkeypatch)
    try:
        with capturedLogs() as events:
            twisted_net.netepoll.install()
        assert [type(reactor) for reactor in installed.reactors] == [NetReactor]
        assert installed.stock == 0
        assert [e for e in events if e.get("event") == "netepoll_fallback"] == []
    finally:
        installed.close()


@pytest.mark.parametrize(
    ("break_twisted", "named"),
    [
        (
            lambda m: m.delattr(posixbase, "_NO_FILEDESC"),
            "twisted.internet.posixbase._NO_FILEDESC is missing",
        ),
        (
            lambda m: m.setattr(check, "REACTOR_STATE", {"_renamed": set}),
            "twisted.internet.epollreactor.EPollReactor()._renamed is missing",
        ),
        (
            lambda m: m.setitem(sys.modules, "twisted_net.netepoll.reactor", None),
            "twisted_net.netepoll.reactor: ModuleNotFoundError",
        ),
    ],
    ids=["module-constant", "reactor-attribute", "reactor-import"],
)
def test_install_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, break_twisted: Any, named: str
) -> None:
    installed = Installed(monkeypatch)
    break_twisted(monkeypatch)
    with capturedLogs() as events:
        twisted_net.netepoll.install()
    warnings = [e for e in events if e.get("event") == "netepoll_fallback"]
    assert len(warnings) == 1
    assert named in warnings[0]["missing"]
    assert warnings[0]["log_level"].name == "warn"
    assert installed.reactors == [] and installed.stock == 1


# The installed twist net on a Twisted whose internals moved -------------------

MOVES = {
    "module-constant": [["twisted.internet.posixbase", "_NO_FILEDESC", "_NO_FD_RENAMED"]],
    "reactor-attribute": [["twisted.internet.epollreactor", "self._poller", "self._epoll"]],
    "method-signature": [
        [
            "twisted.internet.tcp",
            "def _closeSocket(self, orderly):",
            "def _closeSocket(self, orderly, how=None):",
        ]
    ],
}
NAMED = {
    "module-constant": "twisted.internet.posixbase._NO_FILEDESC is missing",
    "reactor-attribute": "EPollReactor()._poller is missing",
    "method-signature": "twisted.internet.tcp.Connection._closeSocket takes",
}


def moved(name: str) -> dict[str, str]:
    path = os.pathsep.join([str(MOVED_INTERNALS), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, "NETEPOLL_MOVED_INTERNALS": json.dumps(MOVES[name])}


def test_the_simulation_breaks_what_it_says() -> None:
    """
    Unguarded, the renamed constant fails the import of the reactor module
    (what C{twist net} died of before the check).
    """
    found = subprocess.run(
        [sys.executable, "-c", "import twisted_net.netepoll.reactor"],
        env={**os.environ, **moved("module-constant")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode != 0
    assert "ImportError" in found.stderr and "_NO_FILEDESC" in found.stderr


@pytest.mark.parametrize("twist_options", [[], ["--reactor", "netepoll"]], ids=["default", "named"])
@pytest.mark.parametrize("move", sorted(MOVES))
def test_twist_net_serves_on_a_twisted_whose_internals_moved(
    twist_net: Any, move: str, twist_options: list[str]
) -> None:
    server = twist_net(
        ["--listen", f"tcp:0:interface={LOOPBACK}", "--no-udp"],
        env=moved(move),
        twist_options=twist_options,
    )
    starting = server.wait_for(lambda e: e.get("event") == "starting")
    assert starting["reactor"] == "twisted.internet.epollreactor.EPollReactor"
    warnings = [e for e in server.events if e.get("event") == "netepoll_fallback"]
    assert len(warnings) == 1
    assert NAMED[move] in warnings[0]["missing"]
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as client:
        assert client.recv(100) == b"Welcome!"
        client.sendall(b"Tracy")
        assert client.recv(100) == b"Hello, Tracy!"
    assert server.stop(signal.SIGTERM) in (0, 143, -signal.SIGTERM)


def test_the_reactor_modules_install_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    The workers install their supervisor's reactor by its module's
    C{install}: that one falls back as well.
    """
    from twisted_net.netepoll import reactor as reactor_module

    installed = Installed(monkeypatch)
    monkeypatch.setattr(check, "problems", lambda: ["simulated"])
    with capturedLogs() as events:
        reactor_module.install()
    assert [e["missing"] for e in events if e.get("event") == "netepoll_fallback"] == ["simulated"]
    assert installed.reactors == [] and installed.stock == 1


def test_twist_on_the_epoll_reactor_needs_no_netepoll_internals(twist_net: Any) -> None:
    """
    C{twist --reactor epoll net} on a Twisted whose internals moved never
    touches netepoll (it died of an C{ImportError} before the check).
    """
    server = twist_net(
        ["--listen", f"tcp:0:interface={LOOPBACK}", "--no-udp"],
        env=moved("module-constant"),
        twist_options=["--reactor", "epoll"],
    )
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as client:
        assert client.recv(100) == b"Welcome!"
    assert [e for e in server.events if e.get("event") == "netepoll_fallback"] == []
    assert server.stop(signal.SIGTERM) in (0, 143, -signal.SIGTERM)
