"""
Printable peer addresses, in the tutorial's C{HOST:PORT} form.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IAddress

__all__ = ["format_address", "format_host_port"]


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
