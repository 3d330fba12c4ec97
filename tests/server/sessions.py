"""
A greeting session on an in-memory transport, shared by the tests of
L{twisted_net.server.session}, L{twisted_net.server.framing} and
L{twisted_net.server.factory}.
"""

from __future__ import annotations

from itertools import combinations, pairwise

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from twisted_net.config import ServerConfig
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.session import GreetingProtocol

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
TOO_LONG = b"error: message longer than 5 bytes\r\n"


class Session:
    """
    One connection of a L{GreetingFactory} on a L{StringTransport}; the
    greeting is taken off the transport and kept in C{greeting}.
    """

    def __init__(
        self,
        framing: str,
        config: ServerConfig | None = None,
        *,
        factory: GreetingFactory | None = None,
        clock: Clock | None = None,
        peer: IPv4Address | IPv6Address = PEER,
    ) -> None:
        self.clock: Clock = clock or Clock()
        self.factory: GreetingFactory = factory or GreetingFactory(
            framing, config, clock=self.clock
        )
        protocol = self.factory.buildProtocol(peer)
        assert isinstance(protocol, GreetingProtocol)
        self.protocol: GreetingProtocol = protocol
        self.transport: StringTransport = StringTransport(peerAddress=peer)
        self.protocol.makeConnection(self.transport)
        self.greeting: bytes = self.take()

    def take(self) -> bytes:
        """
        What the server wrote since the last call.
        """
        written: bytes = self.transport.value()
        self.transport.clear()
        return written

    def send(self, data: bytes) -> bytes:
        """
        Deliver one read; return what the server wrote at once.
        """
        self.protocol.dataReceived(data)
        return self.take()

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)


def splits(data: bytes, parts: int) -> list[list[bytes]]:
    """
    Every way to cut C{data} into C{parts} non-empty reads (TCP never
    delivers an empty read).
    """
    found = []
    for cuts in combinations(range(1, len(data)), parts - 1):
        bounds = [0, *cuts, len(data)]
        found.append([data[start:end] for start, end in pairwise(bounds)])
    return found
