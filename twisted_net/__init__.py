"""
twisted-net: the classic socket tutorial's greeting servers and clients,
done right with Twisted.

Public API, for programs that embed the protocols:

  - L{SeedProtocol}, L{LineProtocol} and L{GreetingFactory}: the TCP side;
  - L{GreetingDatagramProtocol}: the UDP side;
  - L{ServerConfig}: limits and behaviour; L{Counters}: running totals;
  - L{makeService} (from C{twist net} options) and L{build_service};
  - the clients in L{twisted_net.client}.
"""

from .config import ServerConfig
from .datagram import GreetingDatagramProtocol
from .stats import Counters
from .stream import GreetingFactory, GreetingProtocol, LineProtocol, SeedProtocol
from .tap import Options, build_service, makeService

__version__ = "0.1.0"

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
