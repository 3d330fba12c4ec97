"""
The tutorial's C{HOST:PORT} form of addresses: printing peers for logs, and
parsing C{[HOST:]PORT} and C{[IPV6]:PORT} (the one parser of that form, for
every command and option that takes it).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet.interfaces import IAddress

__all__ = ["format_address", "format_host_port", "parse_host_port", "peer_host"]


def format_host_port(host: str, port: int) -> str:
    """
    C{HOST:PORT}, with IPv6 hosts in brackets (C{[::1]:9999}).
    """
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def format_address(address: IAddress | Any) -> str:
    """
    Render any Twisted address (IPv4, IPv6, UNIX, PROXY-protocol) for logs.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if isinstance(host, str) and isinstance(port, int):
        return format_host_port(host, port)
    name = getattr(address, "name", None)
    if name:
        return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    if name is not None or type(address).__name__ == "UNIXAddress":
        return "unix"
    return str(address)


def peer_host(address: IAddress | Any) -> str:
    """
    The part of an address that identifies one client machine, for per-peer
    limits: the IP for internet addresses, C{"unix"} for UNIX sockets.
    """
    host = getattr(address, "host", None)
    return host if isinstance(host, str) else "unix"


def parse_host_port(
    text: str,
    default_host: str = "127.0.0.1",
    *,
    numeric: bool = False,
    port_zero: bool = False,
    kind: str = "address",
) -> tuple[str, int]:
    """
    Parse C{PORT}, C{HOST:PORT} or C{[IPV6]:PORT}.

    @param default_host: the host when only a port is given.
    @param numeric: require an IP address as the host (a server binds to an
        address; only a client resolves names).
    @param port_zero: accept port 0 (a server's "any free port"); a client
        cannot connect to it.
    @param kind: what the text is, for the error messages (C{"UDP address"}).
    @raise ValueError: C{bad KIND 'TEXT': WHAT IS WRONG}, fit for the user.
    """
    host, port_text = default_host, text
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1 :].startswith(":"):
            raise ValueError(f"bad {kind} {text!r}: use [IPV6]:PORT, e.g. [::1]:9999")
        host, port_text = text[1:close], text[close + 2 :]
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"bad {kind} {text!r}: {host!r} is not an IPv6 address") from None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        if not host:
            raise ValueError(f"bad {kind} {text!r}: the host before ':' is empty")
    elif text.count(":") > 1:
        raise ValueError(f"bad {kind} {text!r}: put IPv6 hosts in brackets, e.g. [::1]:9999")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad {kind} {text!r}: port {port_text!r} is not a number") from None
    lowest = 0 if port_zero else 1
    if not lowest <= port <= 65535:
        raise ValueError(f"bad {kind} {text!r}: port must be {lowest} to 65535")
    if numeric:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(
                f"bad {kind} {text!r}: {host!r} is not an IP address "
                "(use e.g. 127.0.0.1:9999 or [::1]:9999)"
            ) from None
    return host, port
