"""
Where a client connects, from what a user types: C{HOST:PORT},
C{[IPV6]:PORT}, or a Twisted client endpoint string (C{tcp:}, C{tls:},
C{unix:}, ...); and what is wrong with one, in the user's words.

This is the one place that turns such text into a client endpoint; the
address form itself is parsed by L{twisted_net.address.parse_host_port}.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from OpenSSL import SSL
from OpenSSL.crypto import Error as OpenSSLCryptoError
from twisted.internet.endpoints import HostnameEndpoint, clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.filepath import UnlistableError

from twisted_net.address import parse_host_port
from twisted_net.client.errors import describe_tls_error
from twisted_net.endpoint_words import parser_problem

__all__ = ["ENDPOINT_FORMS", "client_endpoint", "endpoint_problem"]

ENDPOINT_FORMS = {
    "tcp": "tcp:HOST:PORT",
    "tls": "tls:HOST:PORT[:trustRoots=DIR]",
    "ssl": "ssl:HOST:PORT",
    "unix": "unix:PATH",
}
"""The endpoint strings a greeting client takes, by type, as shown in errors."""

_IPV6_HINT = (
    r"escape each ':' of an IPv6 address (host=\:\:1, quoted for the shell) or use [::1]:PORT"
)
_HOST_AND_PORT = {"tcp", "tls", "ssl"}


def client_endpoint(reactor: Any, text: str, timeout: float = 30.0) -> IStreamClientEndpoint:
    """
    The client endpoint C{text} names: C{HOST:PORT}, C{[IPV6]:PORT} or
    C{PORT} (TCP, IPv4 or IPv6 as the host resolves; C{127.0.0.1} by
    default), or an endpoint string.

    A host without a dot that is not C{localhost} (C{bogus:1}) is read as
    an endpoint type, as Twisted reads it; C{tcp:bogus:1} names such a host.

    @param timeout: seconds to connect, for C{HOST:PORT}.
    @raise ValueError: C{bad endpoint ...: WHAT IS WRONG}, fit for the user.
    """
    address = _host_port(text)
    if address is not None:
        host, port = address
        return HostnameEndpoint(reactor, host, port, timeout or 30.0)
    try:
        _check_arguments(text)
        endpoint: IStreamClientEndpoint = clientFromString(reactor, text)
    except Exception as error:  # the parsers raise all kinds of things
        raise ValueError(f"bad endpoint {text!r}: {endpoint_problem(text, error)}") from None
    return endpoint


def _host_port(text: str) -> tuple[str, int] | None:
    """
    C{(host, port)} when C{text} is meant as C{HOST:PORT}, else C{None}.

    @raise ValueError: for a C{HOST:PORT} with a bad port.
    """
    if text.startswith("[") or text.isdigit():
        try:
            return parse_host_port(text, kind="address")
        except ValueError as error:
            raise ValueError(f"bad endpoint {text!r}: {str(error).split(': ', 1)[1]}") from None
    host, colon, _ = text.rpartition(":")
    if not colon or ":" in host or not host or not _looks_like_host(host):
        return None
    try:
        return parse_host_port(text, kind="address")
    except ValueError as error:
        raise ValueError(f"bad endpoint {text!r}: {str(error).split(': ', 1)[1]}") from None


def _looks_like_host(host: str) -> bool:
    if host == "localhost" or "." in host:
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _split(text: str) -> list[str]:
    """
    The C{:}-separated fields of an endpoint string, C{\\} escapes undone.
    """
    fields, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _check_arguments(text: str) -> None:
    """
    Refuse what Twisted's parsers accept but the connection would trip on
    later, with a Python error: an empty host, a port out of range, a
    negative timeout.

    @raise ValueError: what is wrong.
    """
    kind, *fields = _split(text)
    positional = [field for field in fields if "=" not in field]
    options = dict(field.split("=", 1) for field in fields if "=" in field)
    if kind in _HOST_AND_PORT:
        for index, name in enumerate(("host", "port")):
            if name in options and len(positional) > index:
                raise ValueError(f"{name} given twice ({_IPV6_HINT})")
        host = options.get("host", positional[0] if positional else None)
        port = options.get("port", positional[1] if len(positional) > 1 else None)
        if host == "":
            raise ValueError(f"the host is empty ({_IPV6_HINT})")
        if port is not None:
            _check_port(port)
    if "timeout" in options:
        try:
            timeout = float(options["timeout"])
        except ValueError:
            raise ValueError(f"timeout {options['timeout']!r} is not a number") from None
        if not timeout >= 0:
            raise ValueError(f"timeout must be 0 or more seconds, not {options['timeout']!r}")


def _check_port(text: str) -> None:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range (1 to 65535)")


def endpoint_problem(text: str, error: Exception) -> str:
    """
    What is wrong with an endpoint string, from whatever Twisted's parsers
    raised (C{TypeError}s of the endpoint's constructor, C{ValueError}s,
    errors reading C{trustRoots} or certificate files), without Python's
    words; with the form expected.
    """
    kind = text.split(":", 1)[0]
    form = ENDPOINT_FORMS.get(kind)
    expected = f"; expected {form}" if form else ""
    message = str(error)
    words = parser_problem(error, _IPV6_HINT)
    if words is not None:
        return words + expected
    if isinstance(error, TypeError) and len(error.args) == 2 and isinstance(error.args[1], list):
        # tls: keywords
        return f"unknown option(s) {', '.join(map(str, error.args[1]))}{expected}"
    if isinstance(error, ValueError):
        if message.startswith("Unknown endpoint type"):
            forms = ", ".join(ENDPOINT_FORMS.values())
            named = f"tcp:{kind}:PORT for a host {kind!r}"
            return f"{message}; expected one of {forms}, or HOST:PORT ({named})"
        if error.__class__ is ValueError:
            return message + expected
    if isinstance(error, UnlistableError):
        cause = error.originalException
        where = getattr(cause, "filename", None)
        reason = getattr(cause, "strerror", None) or str(cause)
        return f"cannot read the trustRoots directory{f' {where}' if where else ''}: {reason}"
    if isinstance(error, (SSL.Error, OpenSSLCryptoError)):
        return f"bad certificate: {describe_tls_error(error)}"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}{f': {error.filename}' if error.filename else ''}"
    return (message or type(error).__name__) + expected
