"""Transitional alias: see L{twisted_net.server.session}, L{twisted_net.server.framing} and
L{twisted_net.server.factory}."""

from twisted_net.server.factory import GreetingFactory, Watchdog
from twisted_net.server.framing import FRAMINGS, LineProtocol, SeedProtocol
from twisted_net.server.session import GreetingProtocol

__all__ = [
    "FRAMINGS",
    "GreetingFactory",
    "GreetingProtocol",
    "LineProtocol",
    "SeedProtocol",
    "Watchdog",
]
