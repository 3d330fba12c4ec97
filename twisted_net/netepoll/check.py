"""
The self-check of the C{netepoll} reactor: every private name and shape of
Twisted's that the reactor, its transport and its UDP port rely on.

Twisted may rename or reshape its internals in any release.  Rather than fail
at start-up or, worse, serve nothing while looking healthy, L{problems} lists
what is missing or different, and L{twisted_net.netepoll.install} installs
Twisted's own epoll reactor instead when the list is not empty.  Each check
names the module, class or attribute as Twisted spells it, so the warning
says exactly what moved.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["instance_problems", "problems"]

SIGNATURES: dict[str, tuple[str, ...]] = {
    "twisted.internet.epollreactor.EPollReactor._doReadOrWrite": (
        "self",
        "selectable",
        "fd",
        "event",
    ),
    "twisted.internet.epollreactor.EPollReactor._disconnectSelectable": (
        "self",
        "selectable",
        "why",
        "isRead",
        "faildict",
    ),
    "twisted.internet.epollreactor.EPollReactor.doPoll": ("self", "timeout"),
    "twisted.internet.epollreactor.EPollReactor.sigInt": ("self", "number", "frame"),
    "twisted.internet.epollreactor.EPollReactor.sigTerm": ("self", "number", "frame"),
    "twisted.internet.tcp.Server.__init__": (
        "self",
        "sock",
        "protocol",
        "client",
        "server",
        "sessionno",
        "reactor",
    ),
    "twisted.internet.tcp.Connection._closeSocket": ("self", "orderly"),
    "twisted.internet.tcp.Connection._postLoseConnection": ("self",),
    "twisted.internet.tcp.Connection._maybePauseProducer": ("self",),
    "twisted.internet.tcp.Connection._getLogPrefix": ("self", "applicationObject"),
    "twisted.internet.tcp.Connection.doWrite": ("self",),
    "twisted.internet.tcp.Port._fromListeningDescriptor": (
        "reactor",
        "fd",
        "addressFamily",
        "factory",
    ),
    "twisted.internet.udp.Port.__init__": (
        "self",
        "port",
        "proto",
        "interface",
        "maxPacketSize",
        "reactor",
    ),
    "twisted.internet.udp.Port._fromListeningDescriptor": (
        "reactor",
        "fd",
        "addressFamily",
        "protocol",
        "maxPacketSize",
    ),
}
"""Twisted's methods that netepoll calls or overrides, with their parameter
names (of the bound method for class methods)."""

ATTRIBUTES: tuple[str, ...] = (
    "twisted.internet.posixbase._NO_FILEDESC",
    "twisted.internet.udp._sockErrReadIgnore",
    "twisted.internet.udp._sockErrReadRefuse",
    *(
        f"twisted.internet.tcp.Server.{name}"
        for name in (
            "TLS",
            "_aborting",
            "_addressType",
            "_shouldShutdown",
            "_writeDisconnected",
            "_writeDisconnecting",
            "bufferSize",
            "connected",
            "dataBuffer",
            "disconnected",
            "disconnecting",
            "offset",
            "producer",
            "producerPaused",
            "streamingProducer",
        )
    ),
    "twisted.internet.udp.Port.maxThroughput",
    "twisted.internet.udp.Port.addressFamily",
)
"""Module constants and class attributes of Twisted's that netepoll reads."""

SERVER_STATE: frozenset[str] = frozenset(
    {
        "reactor",
        "_tempDataBuffer",
        "_tempDataLen",
        "socket",
        "fileno",
        "protocol",
        "_addressType",
        "server",
        "client",
        "sessionno",
        "hostname",
        "logstr",
        "repstr",
        "connected",
    }
)
"""Every instance attribute C{tcp.Server.__init__} may set, all of which
L{twisted_net.netepoll.transport.WriteThroughServer}'s own C{__init__} sets
(it does not call Twisted's): one more in Twisted's means a state ours lacks."""

REACTOR_STATE: dict[str, type | tuple[str, ...]] = {
    "_poller": ("poll", "register", "unregister", "modify"),
    "_reads": set,
    "_writes": set,
    "_selectables": dict,
}
"""Instance attributes of C{EPollReactor} that netepoll uses: their type, or
the methods they must have."""


def _lookup(dotted: str) -> Any:
    """
    The object C{dotted} names (a module, then attributes), or raise
    C{LookupError} naming the first part missing.
    """
    import importlib

    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for name in parts[end:]:
            try:
                found = getattr(found, name)
            except AttributeError:
                raise LookupError(f"{dotted} is missing") from None
        return found
    raise LookupError(f"{dotted} is missing")


def _parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


def _signature_problems(expected: dict[str, tuple[str, ...]]) -> Iterable[str]:
    for dotted, names in expected.items():
        try:
            found = _parameters(_lookup(dotted))
        except LookupError as missing:
            yield str(missing)
            continue
        except (TypeError, ValueError):
            yield f"{dotted} has no signature"
            continue
        if found != names:
            yield f"{dotted} takes ({', '.join(found)}), not ({', '.join(names)})"


def _attribute_problems(names: Iterable[str]) -> Iterable[str]:
    for dotted in names:
        try:
            _lookup(dotted)
        except LookupError as missing:
            yield str(missing)


def _server_state_problems() -> Iterable[str]:
    """
    What a real C{tcp.Server} sets in C{__init__} beyond L{SERVER_STATE}.
    """
    from twisted.internet import tcp
    from twisted.internet.protocol import Protocol

    class Port:
        _realPortNumber = 0

    class Reactor:
        def addReader(self, reader: object) -> None:
            pass

    ours, peer = socket.socketpair()
    try:
        reactor: Any = Reactor()
        port: Any = Port()
        made = tcp.Server(ours, Protocol(), ("127.0.0.1", 1), port, 0, reactor)
        extra = sorted(set(vars(made)) - SERVER_STATE)
    except Exception as error:
        yield f"twisted.internet.tcp.Server() failed: {error!r}"
        return
    finally:
        ours.close()
        peer.close()
    if extra:
        yield f"twisted.internet.tcp.Server sets {', '.join(extra)} (new state)"


def _datagram_state_problems() -> Iterable[str]:
    """
    Whether a real C{udp.Port} keeps the state L{twisted_net.netepoll.udp}
    reads: C{_connectedAddr}.
    """
    from twisted.internet import udp
    from twisted.internet.protocol import DatagramProtocol

    try:
        made = udp.Port(0, DatagramProtocol(), "127.0.0.1", 8192, object())
    except Exception as error:
        yield f"twisted.internet.udp.Port() failed: {error!r}"
        return
    if "_connectedAddr" not in vars(made):
        yield "twisted.internet.udp.Port()._connectedAddr is missing"


def problems() -> list[str]:
    """
    What is missing or different among the Twisted internals netepoll relies
    on (its module constants, class attributes, method signatures and the
    state of C{tcp.Server}); empty when netepoll can serve.
    """
    found = list(_attribute_problems(ATTRIBUTES))
    found.extend(_signature_problems(SIGNATURES))
    if "_closed" not in getattr(socket.socket, "__slots__", ()):
        found.append("socket.socket._closed is missing")
    found.extend(_server_state_problems())
    found.extend(_datagram_state_problems())
    return found


def instance_problems(reactor: object) -> list[str]:
    """
    What is missing or different in the state a freshly made epoll reactor
    keeps (L{REACTOR_STATE}).
    """
    found = []
    for name, shape in REACTOR_STATE.items():
        dotted = f"twisted.internet.epollreactor.EPollReactor().{name}"
        value = getattr(reactor, name, None)
        if value is None:
            found.append(f"{dotted} is missing")
        elif isinstance(shape, tuple):
            lacking = [method for method in shape if not callable(getattr(value, method, None))]
            if lacking:
                found.append(f"{dotted} has no {', '.join(lacking)}")
        elif type(value) is not shape:
            found.append(f"{dotted} is a {type(value).__name__}, not a {shape.__name__}")
    return found
