"""
twisted-net: the classic socket tutorial's greeting servers and clients,
done right with Twisted.

Public API, for programs that embed the protocols:

  - L{SeedProtocol}, L{LineProtocol} and L{GreetingFactory}: the TCP side;
  - L{GreetingDatagramProtocol}: the UDP side;
  - L{ServerConfig}: limits and behaviour; L{Counters}: running totals;
  - L{makeService} (from C{twist net} options) and L{build_service};
  - the clients in L{twisted_net.client}.

The server names are loaded when first used, so that the client command
(which imports this package) never loads the server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from twisted_net.config import ServerConfig

if TYPE_CHECKING:
    from twisted_net.server.counters import Counters
    from twisted_net.server.datagram import GreetingDatagramProtocol
    from twisted_net.server.factory import GreetingFactory
    from twisted_net.server.framing import LineProtocol, SeedProtocol
    from twisted_net.server.service import build_service
    from twisted_net.server.session import GreetingProtocol
    from twisted_net.tap import Options, makeService

__version__ = "0.1.0"

_LAZY = {
    "Counters": "twisted_net.server.counters",
    "GreetingDatagramProtocol": "twisted_net.server.datagram",
    "GreetingFactory": "twisted_net.server.factory",
    "GreetingProtocol": "twisted_net.server.session",
    "LineProtocol": "twisted_net.server.framing",
    "SeedProtocol": "twisted_net.server.framing",
    "Options": "twisted_net.tap",
    "build_service": "twisted_net.server.service",
    "makeService": "twisted_net.tap",
}

__all__ = [
    "Counters",
    "GreetingDatagramProtocol",
    "GreetingFactory",
    "GreetingProtocol",
    "LineProtocol",
    "Options",
    "SeedProtocol",
    "ServerConfig",
    "__version__",
    "build_service",
    "makeService",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'twisted_net' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
