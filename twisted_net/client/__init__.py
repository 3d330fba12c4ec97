"""
Clients of the greeting protocol, as functions that return C{Deferred}s, for
programs that embed them; the C{twisted-net} command (L{twisted_net.cli}) is
a thin layer over them.

  - L{greet}: one TCP conversation over any client endpoint, in either
    framing; L{connect_greeting} for conversations fed a message at a time;
  - L{greet_udp}: the tutorial's UDP client;
  - L{fetch} and L{fetch_raw}: the tutorial's HTTP client.

L{client_endpoint} turns what a user types (C{HOST:PORT}, C{[IPV6]:PORT}
or an endpoint string) into the endpoint L{greet} takes.

Nothing here imports the server.
"""

from twisted_net.client.endpoints import client_endpoint
from twisted_net.client.tcp import (
    FRAMINGS,
    ConversationError,
    FetchError,
    FetchResult,
    Framing,
    GreetingClientProtocol,
    LineClientProtocol,
    ReplyTimeoutError,
    SeedClientProtocol,
    ServerClosedError,
    ServerRefusedError,
    TLSError,
    UDPGreetingClient,
    client_protocol,
    connect_greeting,
    fetch,
    fetch_raw,
    greet,
    greet_udp,
    show_bytes,
)

__all__ = [
    "FRAMINGS",
    "ConversationError",
    "FetchError",
    "FetchResult",
    "Framing",
    "GreetingClientProtocol",
    "LineClientProtocol",
    "ReplyTimeoutError",
    "SeedClientProtocol",
    "ServerClosedError",
    "ServerRefusedError",
    "TLSError",
    "UDPGreetingClient",
    "client_endpoint",
    "client_protocol",
    "connect_greeting",
    "fetch",
    "fetch_raw",
    "greet",
    "greet_udp",
    "show_bytes",
]
