"""
The tutorial's UDP client, with a timeout, retries, and replies matched to
requests; L{greet_udp} is re-exported by L{twisted_net.client.tcp}.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IReactorUDP
from twisted.internet.protocol import DatagramProtocol

from twisted_net.client.errors import (
    ConversationError,
    MessageCallback,
    ReplyTimeoutError,
    ServerRefusedError,
    checked_names,
    show_bytes,
)
from twisted_net.hello import is_error, reply, split_line_ending

__all__ = ["UDPGreetingClient", "greet_udp"]


class UDPGreetingClient(DatagramProtocol):
    """
    The tutorial's UDP client: send each name to one server, one at a time,
    and wait for its reply (C{Hello, NAME!}); a reply that does not come
    within C{timeout} seconds is asked for again, up to C{retries} times.

    Only datagrams from the server's address that are the expected reply
    count: late replies to earlier requests, duplicates and datagrams from
    anyone else are ignored.  An error datagram (C{error: ...}) from the
    server ends the conversation.

    @ivar done: fires with the replies, or fails with L{ReplyTimeoutError} or
        L{ServerRefusedError}.
    """

    noisy = False

    def __init__(
        self,
        host: str,
        port: int,
        names: Sequence[bytes],
        timeout: float,
        retries: int,
        clock: IReactorTime,
        on_message: MessageCallback | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.names = list(names)
        self.timeout = timeout
        self.retries = retries
        self.clock = clock
        self.on_message = on_message
        self.messages: list[bytes] = []
        self.done: Deferred[list[bytes]] = Deferred(lambda _: self._stop())
        self._server = (ipaddress.ip_address(host.split("%", 1)[0]), port)
        self._index = -1
        self._expected = b""
        self._attempts = 0
        self._timer: IDelayedCall | None = None

    def begin(self) -> None:
        """
        Send the first name (once listening: the transport is needed).
        """
        self._next()

    def _next(self) -> None:
        self._index += 1
        if self._index >= len(self.names):
            self._finish(None)
            return
        message, ending = split_line_ending(self.names[self._index])
        self._expected = reply(message) + ending
        self._attempts = 0
        self._send()

    def _send(self) -> None:
        if self.transport is None or self.done.called:
            return
        self._attempts += 1
        self._timer = self.clock.callLater(self.timeout, self._no_reply)
        self.transport.write(self.names[self._index], (self.host, self.port))

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _no_reply(self) -> None:
        self._timer = None
        if self.done.called:
            return
        if self._attempts <= self.retries:
            self._send()
            return
        self._finish(
            ReplyTimeoutError(
                f"no reply to {show_bytes(self.names[self._index])!r} after "
                f"{self._attempts} attempt(s), {self.timeout:g} s each (is the server running?)",
                self.messages,
            )
        )

    def _from_server(self, addr: Any) -> bool:
        try:
            host = ipaddress.ip_address(str(addr[0]).split("%", 1)[0])
        except ValueError:
            return False
        return (host, addr[1]) == self._server

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        if self.done.called or self._index >= len(self.names) or not self._from_server(addr):
            return
        if datagram == self._expected:
            self._cancel_timer()
            self.messages.append(datagram)
            if self.on_message is not None:
                self.on_message(datagram)
            self._next()
        elif is_error(datagram):
            self._finish(
                ServerRefusedError(
                    f"the server refused {show_bytes(self.names[self._index])!r}: "
                    f"{show_bytes(split_line_ending(datagram)[0])}",
                    self.messages,
                )
            )

    def stopProtocol(self) -> None:
        if not self.done.called:
            self._finish(ConversationError("the UDP port closed unexpectedly", self.messages))

    def _stop(self) -> None:
        self._cancel_timer()
        self._index = len(self.names)

    def _finish(self, error: ConversationError | None) -> None:
        self._stop()
        if error is None:
            self.done.callback(self.messages)
        else:
            self.done.errback(error)


def _resolve(reactor: Any, host: str) -> Deferred[str]:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        resolving: Deferred[str] = reactor.resolve(host)
        return resolving
    return succeed(host)


def greet_udp(
    reactor: IReactorUDP,
    host: str,
    port: int,
    names: Sequence[bytes],
    timeout: float = 2.0,
    retries: int = 2,
    *,
    on_message: MessageCallback | None = None,
) -> Deferred[list[bytes]]:
    """
    Send each name to the UDP greeting server at C{host}:C{port} and collect
    the replies, in order, one request at a time.

    @param host: an IPv4 or IPv6 address, or a name (resolved to IPv4).
    @param timeout: seconds to wait for each reply before asking again.
    @param retries: how many times to ask again before giving up.
    @param on_message: called with each reply as soon as it arrives.
    @return: fires with the replies; fails with L{ReplyTimeoutError} (no reply
        after every retry), L{ServerRefusedError} (the server answered with an
        error) or a DNS error.
    @raise TypeError: when C{names} are not C{bytes}, at once, as
        L{twisted_net.client.tcp.greet} does.
    """
    names = checked_names(names)

    def start(address: str) -> Deferred[list[bytes]]:
        client = UDPGreetingClient(address, port, names, timeout, retries, reactor, on_message)  # type: ignore[arg-type]
        interface = "::" if ":" in address else ""
        listening = reactor.listenUDP(0, client, interface=interface, maxPacketSize=65535)
        client.begin()

        def stop(result: object) -> Deferred[object]:
            return maybeDeferred(listening.stopListening).addBoth(lambda _: result)

        return client.done.addBoth(stop)

    return _resolve(reactor, host).addCallback(start)
