"""
The listening sockets of C{twist net --workers N}: the supervisor binds each
address as a group of N sockets with C{SO_REUSEPORT} (one per worker), so
the kernel spreads new connections and datagrams over the workers by a hash
of the peer's address, and C{tcp:0} still gives one port.  The supervisor
keeps its copies open while it runs, so a worker that dies loses no
connection waiting to be accepted.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.application.service import Service
from twisted.internet.abstract import isIPv6Address
from twisted.internet.error import CannotListenError

from twisted_net.address import format_host_port
from twisted_net.logs import NamedLogger
from twisted_net.server.endpoints import ListenRequest, describe_listener
from twisted_net.server.service import ListenFailedError

__all__ = ["SharedSockets", "bind_group"]


def bind_group(request: ListenRequest, count: int) -> list[socket.socket]:
    """
    Bind C{count} sockets to one address with C{SO_REUSEPORT}: the first
    picks the port (C{0}: any free one) and must be its only user, the
    others join it.  The sockets
    are non-blocking, listening (TCP), and close on exec.

    @raise CannotListenError: if the address cannot be bound.
    """
    family = socket.AF_INET6 if isIPv6Address(request.interface) else socket.AF_INET
    try:
        address: Any = (
            # The numeric address with its scope (fe80::1%eth0), as listenTCP does.
            socket.getaddrinfo(
                request.interface, request.port, family, 0, 0, socket.AI_NUMERICHOST
            )[0][4]
            if family == socket.AF_INET6
            else (request.interface, request.port)
        )
    except OSError as error:
        raise CannotListenError(request.interface, request.port, error) from None
    group: list[socket.socket] = []
    try:
        for _ in range(count):
            member = socket.socket(family, request.kind)
            group.append(member)
            if request.kind == socket.SOCK_STREAM:
                member.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if len(group) == 1:
                # The first binds alone, so that a port already held, even
                # by another SO_REUSEPORT group (a second instance), fails
                # as it would for a single process, instead of being shared.
                member.bind(address)
                member.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            else:
                member.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                member.bind(address)
            if request.kind == socket.SOCK_STREAM:
                member.listen(request.backlog)
            member.setblocking(False)
            address = member.getsockname()
    except OSError as error:
        for member in group:
            member.close()
        raise CannotListenError(request.interface, request.port, error) from None
    return group


class SharedSockets(Service):
    """
    Binds the socket groups of every listener when started, logs each
    address as a single process would, and closes them when stopped.

    @ivar groups: per listener, in C{--listen} then C{--udp} order, its
        sockets (one per worker).
    """

    log = NamedLogger("twisted_net.workers")

    def __init__(
        self, listen: list[str], udp: list[tuple[str, int]], framing: str, count: int
    ) -> None:
        self.listen = listen
        self.udp = udp
        self.framing = framing
        self.count = count
        self.groups: list[list[socket.socket]] = []

    def startService(self) -> None:
        try:
            for description in self.listen:
                group = _bind(describe_listener(description), self.count, description)
                self.groups.append(group)
                self.log.info(
                    "Listening on {endpoint} (TCP, {framing} framing) at {address}",
                    event="listening",
                    transport="tcp",
                    endpoint=description,
                    framing=self.framing,
                    address=_printable(group[0]),
                )
            for host, port in self.udp:
                where = format_host_port(host or "0.0.0.0", port)
                group = _bind(ListenRequest(socket.SOCK_DGRAM, host, port), self.count, where)
                self.groups.append(group)
                self.log.info(
                    "Listening on UDP at {address}",
                    event="listening",
                    transport="udp",
                    address=_printable(group[0]),
                )
        except BaseException:
            self._close()
            raise
        super().startService()

    def sockets_of(self, index: int) -> list[socket.socket]:
        """
        The sockets worker C{index} serves, one per listener.
        """
        return [group[index] for group in self.groups]

    def stopService(self) -> None:
        super().stopService()
        self._close()

    def _close(self) -> None:
        groups, self.groups = self.groups, []
        for group in groups:
            for member in group:
                member.close()


def _bind(request: ListenRequest, count: int, where: str) -> list[socket.socket]:
    """
    L{bind_group}, whose failure says which side and where.

    @raise ListenFailedError: if the address cannot be bound.
    """
    try:
        return bind_group(request, count)
    except CannotListenError as error:
        transport = "TCP" if request.kind == socket.SOCK_STREAM else "UDP"
        raise ListenFailedError.of(transport, error, where) from None


def _printable(member: socket.socket) -> str:
    host, port = member.getsockname()[:2]
    return format_host_port(host, port)
