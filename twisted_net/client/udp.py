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

from twisted_net.address import format_host_port
from twisted_net.client.errors import (
    ConversationError,
    MessageCallback,
    ReplyTimeoutError,
    ServerRefusedError,
    checked_names,
    show_bytes,
)
from twisted_net.hello import ERROR_PREFIX, is_error, reply, split_line_ending

__all__ = ["UDPGreetingClient", "greet_udp"]


class _Asked:
    """
    One name of a UDP conversation: how often it was sent, and what came
    instead of its reply.
    """

    __slots__ = ("attempts", "expected", "instead", "name", "others", "refusal")

    def __init__(self, name: bytes) -> None:
        self.name = name
        message, ending = split_line_ending(name)
        self.expected = reply(message) + ending
        self.attempts = 0
        self.refusal: bytes | None = None
        self.instead: tuple[bytes, str | None] | None = None
        self.others = 0

    def saw(self, datagram: bytes, sender: str | None) -> None:
        """
        Something other than the reply arrived while this name waited
        (C{sender}: C{None} for the server itself).
        """
        if self.instead is None:
            self.instead = (datagram, sender)
        else:
            self.others += 1

    def problem(self, timeout: float, messages: Sequence[bytes]) -> ConversationError:
        """
        Why this name has no reply, in the user's words.
        """
        shown = show_bytes(self.name)
        if self.refusal is not None:
            return ServerRefusedError(
                f"the server refused {shown!r}: "
                f"{show_bytes(split_line_ending(self.refusal)[0].removeprefix(ERROR_PREFIX))}",
                messages,
            )
        text = f"no reply to {shown!r} after {self.attempts} attempt(s), {timeout:g} s each"
        if self.instead is None:
            return ReplyTimeoutError(f"{text} (is the server running?)", messages)
        datagram, sender = self.instead
        what = (
            f"got {_excerpt(datagram)!r} from {sender}"
            if sender
            else (f"the server sent {_excerpt(datagram)!r}")
        )
        more = f" (and {self.others} more datagram(s))" if self.others else ""
        return ReplyTimeoutError(f"{text}; {what}{more} instead", messages)


def _excerpt(datagram: bytes, limit: int = 60) -> str:
    shown = show_bytes(datagram[:limit])
    return shown + "..." if len(datagram) > limit else shown


class UDPGreetingClient(DatagramProtocol):
    """
    The tutorial's UDP client: send each name to one server, one at a time,
    and wait for its reply (C{Hello, NAME!}); a reply that does not come
    within C{timeout} seconds is asked for again, up to C{retries} times.
    Every name is tried, whatever happened to the ones before it.

    Only datagrams from the server's address that are the expected reply
    count: duplicates and datagrams from anyone else are ignored (but named
    when a name stays unanswered); a late reply to a name given up on still
    counts.  An error datagram (C{error: ...}) from the server answers the
    name it came for: that name is not asked again.

    @ivar done: fires with the replies, in the order they came, once every
        name is answered; otherwise, after the last name, fails with the
        first unanswered name's L{ReplyTimeoutError} or
        L{ServerRefusedError}, whose C{problems} hold one error per name
        still unanswered and whose C{messages} hold the replies that came.
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
        self._asked = [_Asked(name) for name in self.names]
        self._index = -1
        self._unanswered: list[_Asked] = []
        self._timer: IDelayedCall | None = None

    def begin(self) -> None:
        """
        Send the first name (once listening: the transport is needed).
        """
        self._next()

    def _current(self) -> _Asked | None:
        return self._asked[self._index] if 0 <= self._index < len(self._asked) else None

    def _next(self) -> None:
        self._cancel_timer()
        self._index += 1
        if self._index >= len(self._asked):
            self._finish()
            return
        self._send()

    def _send(self) -> None:
        current = self._current()
        if self.transport is None or self.done.called or current is None:
            return
        current.attempts += 1
        self._timer = self.clock.callLater(self.timeout, self._no_reply)
        self.transport.write(current.name, (self.host, self.port))

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _no_reply(self) -> None:
        self._timer = None
        current = self._current()
        if self.done.called or current is None:
            return
        if current.attempts <= self.retries:
            self._send()
            return
        self._unanswered.append(current)
        self._next()

    def _sender(self, addr: Any) -> str | None:
        """
        C{None} when C{addr} is the server's, else its printable form.
        """
        try:
            host = ipaddress.ip_address(str(addr[0]).split("%", 1)[0])
        except ValueError:
            return str(addr)
        if (host, addr[1]) == self._server:
            return None
        return format_host_port(str(addr[0]), int(addr[1]))

    def _answered(self, datagram: bytes) -> None:
        self.messages.append(datagram)
        if self.on_message is not None:
            self.on_message(datagram)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        current = self._current()
        if self.done.called or current is None:
            return
        sender = self._sender(addr)
        if sender is None and datagram == current.expected:
            self._answered(datagram)
            self._next()
            return
        if sender is None:
            late = next((a for a in self._unanswered if a.expected == datagram), None)
            if late is not None:
                self._unanswered.remove(late)
                self._answered(datagram)
                return
            if datagram in self.messages:  # a duplicate, after a retry
                return
            if is_error(datagram):
                current.refusal = datagram
                self._unanswered.append(current)
                self._next()
                return
        current.saw(datagram, sender)

    def stopProtocol(self) -> None:
        if not self.done.called:
            self._stop()
            self.done.errback(ConversationError("the UDP port closed unexpectedly", self.messages))

    def _stop(self) -> None:
        self._cancel_timer()
        self._index = len(self._asked)

    def _finish(self) -> None:
        self._stop()
        if not self._unanswered:
            self.done.callback(self.messages)
            return
        missing = sorted(self._unanswered, key=self._asked.index)
        problems = [asked.problem(self.timeout, self.messages) for asked in missing]
        first = problems[0]
        error = type(first)("; ".join(map(str, problems)), self.messages)
        error.problems = problems
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
    @return: fires with the replies; fails, after every name was tried,
        with L{ReplyTimeoutError} (no reply after every retry) or
        L{ServerRefusedError} (the server answered with an error), holding
        one error per unanswered name in its C{problems}; or with a DNS
        error.
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
