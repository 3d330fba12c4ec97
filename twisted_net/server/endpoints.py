"""
The one reader of C{--listen} endpoint strings.

Twisted's C{serverFromString} does the parsing proper; this module adds
what the server needs to know about a string before and beside it:

  - its type (L{endpoint_type}), and so whether it can need TLS
    (L{tls_unneeded}), read without importing Twisted's reactor, because
    the answer decides how the reactor is imported
    (L{twisted_net.netepoll.lean});
  - the endpoint to listen on (L{server_endpoint}): C{haproxy:} and
    C{ssl:} endpoints hold the greeting protocol back until the PROXY
    header or the TLS handshake is through;
  - the listen backlog, L{twisted_net.server.kernel.default_backlog}
    unless the string sets its own (L{with_backlog});
  - a clear error, in the user's words, for a string that is no endpoint
    or has a port out of range (L{endpoint_error});
  - the TCP socket an endpoint listens on, for C{--workers}
    (L{describe_listener}).

Twisted's endpoint parser, L{twisted_net.server.proxy} and
L{twisted_net.server.gate} are imported on first use (L{server_endpoint}):
their imports load Twisted's TCP and TLS set-up, which the entry points
(C{twisted_net.tap}, the worker) must import first, with
L{twisted_net.netepoll.lean.import_twisted}.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from twisted_net.endpoint_words import parser_problem
from twisted_net.server.kernel import default_backlog

__all__ = [
    "PLAIN_ENDPOINT_TYPES",
    "PROXY_TYPE",
    "TLS_TYPE",
    "ListenRequest",
    "NotShareableError",
    "check_port",
    "describe_listener",
    "endpoint_error",
    "endpoint_type",
    "server_endpoint",
    "tls_unneeded",
    "with_backlog",
]

PLAIN_ENDPOINT_TYPES = frozenset({"tcp", "tcp6", "unix", "systemd"})
"""Twisted's built-in server endpoint types that never use TLS.  Anything
else (C{ssl:}, an endpoint plugin such as C{le:}) may need pyOpenSSL."""

PROXY_TYPE = "haproxy"
"""The endpoint type that puts the PROXY protocol in front of another endpoint."""

TLS_TYPE = "ssl"
"""The endpoint type of TLS endpoints, held back until the handshake."""


_BACKLOG_AT = {"tcp": 2, "tcp6": 1, "ssl": 5, "unix": 2}
"""Per endpoint type whose parser takes a C{backlog}, its place among the
positional arguments after the type (as in Twisted's C{_parseTCP},
C{_TCP6ServerParser}, C{_parseSSL}, C{_parseUNIX})."""

_PORTED = frozenset({"tcp", "tcp6", "ssl"})
"""The endpoint types whose first positional argument is a TCP port."""

_IPV6_HINT = (
    "escape each ':' of an IPv6 address, as in 'tcp6:0:interface=\\:\\:1', quoted for the shell"
)


def _fields(rest: str) -> tuple[list[str], dict[str, str]]:
    """
    The positional and keyword arguments of an endpoint string after its
    type, as Twisted's parser splits them: at colons and at the first
    equals sign of a field, neither escaped; escapes undone.
    """
    positional: list[str] = []
    keywords: dict[str, str] = {}
    parts: list[str] = [""]
    escaped = False

    def end_field() -> None:
        if len(parts) == 1:
            positional.append(parts[0])
        else:
            keywords.setdefault(parts[0], parts[1])

    for character in rest:
        if escaped:
            parts[-1] += character
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ":":
            end_field()
            parts[:] = [""]
        elif character == "=":
            parts.append("")
        else:
            parts[-1] += character
    end_field()
    return positional, keywords


def _innermost(description: str) -> tuple[str, str, str | None]:
    """
    The C{haproxy:} prefixes of an endpoint string, the type of the
    endpoint they wrap, and the rest after that type (C{None} without one).
    """
    prefix = ""
    while True:
        kind, rest = _first_field(description)
        if kind != PROXY_TYPE or rest is None:
            return prefix, kind, rest
        prefix += kind + ":"
        description = rest


def with_backlog(description: str, backlog: int | None = None) -> str:
    """
    C{description} with a C{backlog=} argument added, for the endpoint
    types that take one (C{tcp:}, C{tcp6:}, C{ssl:}, C{unix:}, behind any
    C{haproxy:}) and do not set their own, by keyword or by position.

    Twisted's default backlog, 50, is too small for a server that speaks
    first: in a burst of connects the kernel drops the handshakes beyond
    it, and those clients wait for a greeting that never comes.

    @param backlog: the backlog to add; by default the system's ceiling
        (L{twisted_net.server.kernel.default_backlog}).
    """
    _, kind, rest = _innermost(description)
    place = _BACKLOG_AT.get(kind)
    if place is None or rest is None or (len(rest) - len(rest.rstrip("\\"))) % 2:
        return description
    positional, keywords = _fields(rest)
    if "backlog" in keywords or len(positional) > place:
        return description
    return f"{description}:backlog={default_backlog() if backlog is None else backlog}"


def check_port(description: str) -> None:
    """
    Refuse a C{tcp:}, C{tcp6:} or C{ssl:} port (behind any C{haproxy:})
    that is no number from 0 to 65535, in the words C{--udp} uses, before
    a bind would fail on it with Python's words.

    @raise ValueError: what is wrong with the port.
    """
    _, kind, rest = _innermost(description)
    if kind not in _PORTED or rest is None:
        return
    positional, keywords = _fields(rest)
    port = keywords.get("port", positional[0] if positional else None)
    if port is None:
        return
    if not port.strip().isdigit():
        raise ValueError(f"port {port!r} is not a number")
    if int(port) > 65535:
        raise ValueError("port must be 0 to 65535")


def _first_field(description: str) -> tuple[str, str | None]:
    """
    Split an endpoint string at its first unescaped colon.

    @return: the text before it (backslash escapes kept, so that an escaped
        type never matches a plain one), and the rest, or C{None} without
        a colon.
    """
    escaped = False
    for index, character in enumerate(description):
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ":":
            return description[:index], description[index + 1 :]
    return description, None


def endpoint_type(description: str) -> str:
    """
    The type of a server endpoint string, as C{serverFromString} reads it
    (the text before the first colon that is not escaped with a backslash),
    looking through C{haproxy:} prefixes to the endpoint they wrap.
    """
    while True:
        kind, rest = _first_field(description)
        if kind != PROXY_TYPE or rest is None:
            return kind
        description = rest


def tls_unneeded(descriptions: Iterable[str]) -> bool:
    """
    Whether none of these server endpoint strings can need TLS: each one is
    of a type in L{PLAIN_ENDPOINT_TYPES} (behind any C{haproxy:}).
    """
    return all(endpoint_type(description) in PLAIN_ENDPOINT_TYPES for description in descriptions)


def server_endpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    Parse a C{--listen} string like Twisted's C{serverFromString}, except
    that the greeting protocol is held back until the connection is open:
    C{haproxy:INNER} waits for the PROXY header
    (L{twisted_net.server.proxy.ProxyHeaderFactory}), C{ssl:...} for the TLS
    handshake (L{twisted_net.server.gate.HandshakeGateFactory}).

    @raise Exception: whatever C{serverFromString} raises for a bad string.
    """
    # On first use, not at the top: see the module docstring.
    from twisted.internet.endpoints import serverFromString

    from twisted_net.server.gate import GatedEndpoint, HandshakeGateFactory
    from twisted_net.server.proxy import proxy_header_endpoint

    kind, rest = _first_field(description)
    if kind == PROXY_TYPE and rest is not None:
        return proxy_header_endpoint(serverFromString(reactor, with_backlog(rest)), rest)
    endpoint: IStreamServerEndpoint = serverFromString(reactor, with_backlog(description))
    if kind == TLS_TYPE:
        return GatedEndpoint(endpoint, HandshakeGateFactory)
    return endpoint


def endpoint_error(reactor: Any, description: str, gated: bool = True) -> str | None:
    """
    Why C{description} is no server endpoint, in the user's words (the
    Python errors of Twisted's parsers translated by
    L{twisted_net.endpoint_words.parser_problem}), or C{None} if it is one.

    @param gated: read it as a C{--listen} string (L{server_endpoint});
        otherwise as a plain Twisted endpoint string (C{--metrics}).
    """
    from twisted.internet.endpoints import serverFromString

    try:
        check_port(description)
        if gated:
            server_endpoint(reactor, description)
        else:
            serverFromString(reactor, description)
    except Exception as error:  # the parsers raise all kinds of things
        words = parser_problem(error, _IPV6_HINT)
        if words is not None:
            return words
        if isinstance(error, ValueError) and str(error):
            return str(error)
        return f"not an endpoint string ({error or type(error).__name__})"
    return None


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
    backlog: int = field(default_factory=default_backlog)


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
    letting L{server_endpoint}'s endpoint listen on a recorder.

    @raise NotShareableError: for endpoints that do not listen on a TCP port.
    @raise ValueError: for strings that are no endpoint at all.
    """
    recorder = _ListenRecorder(description)
    endpoint = server_endpoint(recorder, description)
    failures: list[Failure] = []
    listening: Deferred[Any] = endpoint.listen(Factory())
    listening.addErrback(failures.append)
    if failures:
        failures[0].raiseException()
    if recorder.request is None:
        raise NotShareableError(f"--workers cannot share {description!r}")
    return recorder.request
