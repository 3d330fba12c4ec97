"""
Clients of the greeting protocol, as functions that return C{Deferred}s, for
programs that embed them; the C{twisted-net} command is a thin layer over
them.

  - L{greet}: one TCP conversation over any client endpoint (C{tcp:},
    C{tls:}, C{unix:}, ...), in either framing; L{connect_greeting} for
    conversations fed a message at a time (interactive use);
  - L{greet_udp}: the tutorial's UDP client, with a timeout, retries and
    replies matched to requests;
  - L{fetch} and L{fetch_raw}: the tutorial's HTTP client (re-exported from
    L{twisted_net.client.fetch}).

Peer bytes are never decoded: messages are handed over as C{bytes}, exactly
as the server framed them (line endings of the C{line} framing removed).
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint

from twisted_net.client.conversation import GreetingClientProtocol
from twisted_net.client.errors import (
    ConversationError,
    MessageCallback,
    ReplyTimeoutError,
    ServerClosedError,
    ServerRefusedError,
    TLSError,
    checked_names,
    show_bytes,
)
from twisted_net.client.fetch import FetchError, FetchResult, fetch, fetch_raw
from twisted_net.client.framings import (
    FRAMINGS,
    Framing,
    LineClientProtocol,
    SeedClientProtocol,
    client_protocol,
)
from twisted_net.client.udp import UDPGreetingClient, greet_udp

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
    "client_protocol",
    "connect_greeting",
    "fetch",
    "fetch_raw",
    "greet",
    "greet_udp",
    "show_bytes",
]


def connect_greeting(
    reactor: IReactorTime,
    endpoint: IStreamClientEndpoint,
    protocol: GreetingClientProtocol,
    timeout: float = 10.0,
) -> Deferred[GreetingClientProtocol]:
    """
    Connect C{protocol} (from L{client_protocol}) within C{timeout}
    seconds; then feed it with L{GreetingClientProtocol.send} and
    L{GreetingClientProtocol.finish} and wait for its C{done}.

    @return: fires with C{protocol} once connected; fails with the
        connection error, or C{TimeoutError} when the timeout passes first.
    """
    connecting: Deferred[GreetingClientProtocol] = connectProtocol(endpoint, protocol)
    if timeout:
        connecting.addTimeout(timeout, reactor)
    return connecting


def greet(
    reactor: IReactorTime,
    endpoint: IStreamClientEndpoint,
    names: Sequence[bytes],
    framing: Framing = "seed",
    *,
    timeout: float = 10.0,
    on_message: MessageCallback | None = None,
) -> Deferred[list[bytes]]:
    """
    Have one conversation with a greeting server: receive its greeting, send
    every name (one at a time in the C{seed} framing, all at once in
    C{line}), receive each reply, send C{exit}, wait for the close.

    @param endpoint: where the server is, e.g.
        C{clientFromString(reactor, "tcp:127.0.0.1:9999")}.
    @param timeout: seconds allowed to connect, and for the server to send
        each message it owes (C{0}: no limit).
    @param on_message: called with each message as soon as it is complete.
    @return: fires with everything the server said (greeting first, then
        the replies), each message separately; fails with a
        L{ConversationError} or the connection's error.
    @raise ValueError: for an unknown framing or a name the framing cannot
        send (empty in C{seed}, a line ending in C{line}, C{exit}).
    @raise TypeError: when C{names} are not C{bytes} (C{"names must be bytes,
        not str"}): like the C{ValueError}s, raised at once, before any
        connection, as these are mistakes of the calling program, not
        failures of the conversation.
    """
    names = checked_names(names)
    protocol = client_protocol(framing, reactor, timeout, on_message)
    for name in names:
        protocol.check_message(name)

    def converse(connected: GreetingClientProtocol) -> Deferred[list[bytes]]:
        for name in names:
            connected.send(name)
        connected.finish()
        return connected.done

    return connect_greeting(reactor, endpoint, protocol, timeout).addCallback(converse)
