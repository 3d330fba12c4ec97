"""
The two per-connection costs that moved from the protocols into
L{twisted_net.netepoll.transport.WriteThroughServer}: the first write sent at
once, and the peer's address made once.
"""

from __future__ import annotations

from typing import Any, cast

from test_connection_ends import LOOPBACK, FlushListReactor, Recorder, RefusingSocket
from twisted.internet import tcp
from twisted.internet.address import IPv4Address, IPv6Address

from twisted_net.netepoll.transport import WriteThroughServer


def transport(client: tuple[Any, ...] = (LOOPBACK, 1)) -> tuple[WriteThroughServer, Any]:
    reactor = FlushListReactor()
    made = WriteThroughServer(
        cast(Any, RefusingSocket(room=100)), Recorder(), client, None, 1, cast(Any, reactor)
    )
    return made, reactor


def test_only_the_first_write_is_sent_at_once() -> None:
    """
    The first bytes go out in the C{write} call; later ones wait for the
    end-of-iteration flush, so that the replies of one iteration leave
    together.
    """
    made, reactor = transport()
    made.write(b"Welcome!")
    assert made._tempDataBuffer == [] and reactor.flush_list == []
    made.write(b"Hello, M!")
    assert made._tempDataBuffer == [b"Hello, M!"]
    assert reactor.flush_list == [made]


def test_an_empty_first_write_keeps_the_next_one_first() -> None:
    made, reactor = transport()
    made.write(b"")
    made.write(b"Welcome!")
    assert made._tempDataBuffer == [] and reactor.flush_list == []


def test_the_peer_is_twisteds() -> None:
    """
    C{getPeer} gives what Twisted's C{tcp.Server.getPeer} gives, for IPv4
    and IPv6.  It is not kept: the session asks once, and keeps only the
    printable form (an address object kept is ~100 bytes a connection).
    """
    for client, kind in [((LOOPBACK, 40000), IPv4Address), (("::1", 40000, 0, 0), IPv6Address)]:
        made, _ = transport(client)
        peer = made.getPeer()
        assert isinstance(peer, kind)
        assert peer == tcp.Server.getPeer(made)
