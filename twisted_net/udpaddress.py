"""
The C{[HOST:]PORT} form of UDP addresses (Twisted has no UDP endpoint
strings), for the server's C{--udp} and the client's C{--connect}: the
parser is L{twisted_net.address.parse_host_port}.
"""

from __future__ import annotations

from twisted_net.address import parse_host_port

__all__ = ["parse_udp_address"]


def parse_udp_address(
    text: str, default_host: str = "0.0.0.0", *, numeric: bool = False
) -> tuple[str, int]:
    """
    Parse C{PORT}, C{HOST:PORT} or C{[IPV6]:PORT}; port 0 is allowed (a
    server's "any free port").

    @param default_host: the host when only a port is given.
    @param numeric: require an IP address as the host (a server binds to an
        address; only a client resolves names).
    @raise ValueError: C{bad UDP address ...}, with a message fit for the user.
    """
    return parse_host_port(text, default_host, numeric=numeric, port_zero=True, kind="UDP address")
