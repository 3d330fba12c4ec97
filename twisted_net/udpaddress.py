"""
The C{[HOST:]PORT} form of UDP addresses (Twisted has no UDP endpoint
strings), for the server's C{--udp} and the client's C{--connect}.
"""

from __future__ import annotations

import ipaddress

__all__ = ["parse_udp_address"]


def parse_udp_address(
    text: str, default_host: str = "0.0.0.0", *, numeric: bool = False
) -> tuple[str, int]:
    """
    Parse C{PORT}, C{HOST:PORT} or C{[IPV6]:PORT}.

    @param default_host: the host when only a port is given.
    @param numeric: require an IP address as the host (a server binds to an
        address; only a client resolves names).
    @raise ValueError: with a message fit for the user.
    """
    host, port_text = default_host, text
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1 :].startswith(":"):
            raise ValueError(f"bad UDP address {text!r}: use [IPV6]:PORT, e.g. [::1]:9999")
        host, port_text = text[1:close], text[close + 2 :]
        _check_ipv6(host, text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        if not host:
            raise ValueError(f"bad UDP address {text!r}: the host before ':' is empty")
    elif text.count(":") > 1:
        raise ValueError(f"bad UDP address {text!r}: put IPv6 hosts in brackets, e.g. [::1]:9999")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad UDP address {text!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bad UDP address {text!r}: port must be 0 to 65535")
    if numeric:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(
                f"bad UDP address {text!r}: {host!r} is not an IP address "
                "(use e.g. 127.0.0.1:9999 or [::1]:9999)"
            ) from None
    return host, port


def _check_ipv6(host: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"bad UDP address {text!r}: {host!r} is not an IPv6 address") from None
