"""
Services that listen: one per TCP endpoint, one per UDP address, and the
L{NetService} that owns them and stops them gracefully; L{build_service}
wires them, and L{ExitOnListenFailure} turns a port that cannot be bound
into one line on stderr and an exit status, for C{twist net} and its
C{--workers} supervisor.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, NoReturn

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorUDP,
    IStreamServerEndpoint,
)

from twisted_net.address import format_address, format_host_port
from twisted_net.config import ServerConfig
from twisted_net.hello import error_line
from twisted_net.logs import NamedLogger
from twisted_net.server.datagram import GreetingDatagramProtocol, receive_buffer_size
from twisted_net.server.endpoints import server_endpoint
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.overflows import ListenOverflowWatch

__all__ = [
    "DatagramListener",
    "ExitOnListenFailure",
    "ListenFailedError",
    "ListeningService",
    "NetService",
    "StreamListener",
    "build_service",
    "exit_with",
    "listen_at_once",
    "stop_listening",
]


class ListenFailedError(Exception):
    """
    A port that cannot be bound, said as the user needs it: which side
    (C{TCP} or C{UDP}), where, and why, e.g. C{cannot listen on TCP
    127.0.0.1:9999: Address already in use}.
    """

    def __init__(self, transport: str, where: str, reason: str) -> None:
        super().__init__(transport, where, reason)
        self.transport = transport
        self.where = where
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot listen on {self.transport} {self.where}: {self.reason}"

    @classmethod
    def of(cls, transport: str, error: Exception, fallback: str) -> ListenFailedError:
        """
        The failure of C{transport} from the error listening raised: a
        C{CannotListenError} names the address; otherwise C{fallback} does.
        """
        cause: Any = error
        where = fallback
        if isinstance(error, CannotListenError):
            cause = error.socketError
            if isinstance(error.port, int):
                where = format_host_port(error.interface or "0.0.0.0", error.port)
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        return cls(transport, where, reason)


def listen_at_once(
    endpoint: IStreamServerEndpoint, factory: IProtocolFactory, description: str
) -> IListeningPort:
    """
    Listen on C{endpoint} and return the port, for endpoints that listen
    synchronously (all of Twisted's own do), so that a failure to listen
    surfaces in C{startService} as an exception.

    @raise CannotListenError: when the endpoint does not listen at once.
    @raise Exception: whatever the endpoint failed with.
    """
    result: list[Any] = []
    endpoint.listen(factory).addBoth(result.append)
    if not result:
        raise CannotListenError(None, description, "the endpoint did not listen at once")
    outcome = result[0]
    if not IListeningPort.providedBy(outcome):
        outcome.raiseException()
    listening: IListeningPort = outcome
    return listening


def stop_listening(port: Any) -> Deferred[None]:
    """
    Stop a listening port (TCP or UDP), as a Deferred whatever it returns.
    """
    stopped: Deferred[None] = maybeDeferred(port.stopListening)
    return stopped


class ListeningService(Service):
    """
    A service that owns one listening port (C{port}, set by C{startService})
    and stops listening when it stops.
    """

    port: Any = None

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return None
        return stop_listening(port)


class StreamListener(ListeningService):
    """
    Listen on one Twisted server endpoint string (C{tcp:}, C{tcp6:},
    C{ssl:}, C{unix:}, C{systemd:}, C{haproxy:}, ...) and log the address
    actually bound, so that C{tcp:0} is usable.

    Listening happens synchronously in L{startService} for every endpoint
    that can (all of Twisted's own do), so a failure to listen surfaces
    there as an exception.

    @ivar inherited_socket: a socket already bound and listening, to serve
        instead of binding one (a worker of C{twist net --workers} gets it
        from its supervisor).
    """

    log = NamedLogger("twisted_net.service")
    inherited_socket: socket.socket | None = None

    def __init__(self, description: str, factory: GreetingFactory, reactor: Any) -> None:
        self.description = description
        self.factory = factory
        self.reactor = reactor
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        # Imported when listening, not at the top: it imports
        # twisted.internet.tcp, which the entry points import first
        # (twisted_net.netepoll.lean.import_twisted).
        from twisted_net.server.accepting import GuardedListeningReactor

        reactor = GuardedListeningReactor(
            self.reactor,
            self.factory.refusals,
            error_line("server busy"),
            inherited=self.inherited_socket,
        )
        endpoint = server_endpoint(reactor, self.description)
        try:
            self.port = outcome = listen_at_once(endpoint, self.factory, self.description)
        except (CannotListenError, OSError, OverflowError) as error:
            raise ListenFailedError.of("TCP", error, self.description) from None
        super().startService()
        self.log.info(
            "Listening on {endpoint} (TCP, {framing} framing) at {address}",
            event="listening",
            transport="tcp",
            endpoint=self.description,
            framing=self.factory.framing,
            address=format_address(outcome.getHost()),
        )


class DatagramListener(ListeningService):
    """
    Listen for UDP datagrams on one host and port (IPv4 or IPv6).

    @ivar inherited_socket: a socket already bound, to serve instead of
        binding one (see L{StreamListener.inherited_socket}).
    """

    log = NamedLogger("twisted_net.service")
    inherited_socket: socket.socket | None = None

    def __init__(
        self, host: str, port: int, protocol: GreetingDatagramProtocol, reactor: IReactorUDP
    ) -> None:
        self.host = host
        self.port_number = port
        self.protocol = protocol
        self.reactor = reactor
        self.port: Any = None

    def startService(self) -> None:
        try:
            self._listen()
        except (CannotListenError, OSError, OverflowError) as error:
            where = format_host_port(self.host or "0.0.0.0", self.port_number)
            raise ListenFailedError.of("UDP", error, where) from None
        super().startService()
        self.log.info(
            "Listening on UDP at {address}",
            event="listening",
            transport="udp",
            address=format_address(self.port.getHost()),
        )

    def _listen(self) -> None:
        inherited = self.inherited_socket
        if inherited is not None:
            reactor: Any = self.reactor  # and IReactorSocket
            self.port = reactor.adoptDatagramPort(
                inherited.fileno(),
                inherited.family,
                self.protocol,
                maxPacketSize=receive_buffer_size(self.protocol.config),
            )
            inherited.close()  # the port serves its own duplicate
        else:
            self.port = self.reactor.listenUDP(
                self.port_number,
                self.protocol,
                interface=self.host,
                maxPacketSize=receive_buffer_size(self.protocol.config),
            )


class NetService(MultiService):
    """
    The whole server: its listeners, the TCP factory they share and the UDP
    protocol.  Stopping it stops listening at once, then lets every
    connection send the replies it owes and close (aborting stragglers after
    C{config.shutdown_timeout}).

    @ivar factory: the TCP factory, shared by every TCP listener.
    @ivar datagram_protocol: the UDP protocol, shared by every UDP listener.
    """

    log = NamedLogger("twisted_net.service")

    def __init__(
        self, factory: GreetingFactory, datagram_protocol: GreetingDatagramProtocol
    ) -> None:
        super().__init__()
        self.factory = factory
        self.datagram_protocol = datagram_protocol

    @property
    def config(self) -> ServerConfig:
        return self.factory.config

    def startService(self) -> None:
        clock = self.factory.clock
        self.log.info(
            "twisted-net starting with {reactor}",
            event="starting",
            reactor=f"{type(clock).__module__}.{type(clock).__qualname__}",
        )
        super().startService()

    def stopService(self) -> Deferred[None]:
        stopped = super().stopService()

        def drain(_: object) -> Deferred[None]:
            owed = len(self.factory.sessions)
            if owed:
                self.log.info(
                    "Stopping: waiting for {count} connections to finish",
                    event="draining",
                    count=owed,
                )
            return self.factory.drain()

        def report(_: object) -> None:
            self.log.info(
                "Stopped: {counters}",
                event="stopped",
                counters=self.factory.counters.snapshot(),
            )

        result: Deferred[None] = Deferred()
        stopped.addCallback(drain).addCallback(report).chainDeferred(result)
        return result


def exit_with(status: int, message: str) -> NoReturn:
    """
    End the program with C{status} (one of C{os.EX_*}), after writing
    C{message} as one line on stderr, as C{twist} reports its own errors.
    """
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    raise SystemExit(status)


class ExitOnListenFailure(MultiService):
    """
    A service whose start ends the program with one clear line and
    C{os.EX_UNAVAILABLE} when a port cannot be bound, instead of a
    traceback: children already started are stopped first.  A
    L{ListenFailedError} says which side and where.  Mixed into the
    service C{twist net} runs, alone or as the C{--workers} supervisor.
    """

    def startService(self) -> None:
        try:
            super().startService()
        except (ListenFailedError, CannotListenError, OSError, ValueError, OverflowError) as error:
            for child in reversed(list(self)):
                if child.running:
                    child.stopService()
            if isinstance(error, ListenFailedError):
                exit_with(os.EX_UNAVAILABLE, f"twist net: error: {error}")
            exit_with(os.EX_UNAVAILABLE, f"twist net: error: cannot listen: {error}")


class ServingNetService(ExitOnListenFailure, NetService):
    """
    The L{NetService} of C{twist net}: exits clearly when it cannot listen.
    """


def build_service(
    config: ServerConfig,
    framing: str,
    listen: list[str],
    udp: list[tuple[str, int]],
    reactor: Any = None,
    service_class: type[NetService] = NetService,
    metrics: str | None = None,
    watch_overflows: bool = True,
) -> NetService:
    """
    Wire one factory and one datagram protocol to every listener.

    @param listen: TCP server endpoint strings.
    @param udp: C{(host, port)} pairs to listen on for UDP.
    @param metrics: server endpoint string for the Prometheus page, or C{None}.
    @param watch_overflows: log the kernel's listen-queue overflows
        (L{twisted_net.server.overflows.ListenOverflowWatch}) when there is
        a TCP listener; a C{--workers} worker leaves that to its supervisor.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    factory = GreetingFactory(framing, config, clock=reactor)
    datagrams = GreetingDatagramProtocol(config, counters=factory.counters, clock=reactor)
    service = service_class(factory, datagrams)
    for description in listen:
        StreamListener(description, factory, reactor).setServiceParent(service)
    udp_listeners: list[DatagramListener] = []
    for index, (host, port) in enumerate(udp):
        protocol = datagrams if index == 0 else datagrams.for_another_port()
        udp_listeners.append(DatagramListener(host, port, protocol, reactor))
        udp_listeners[-1].setServiceParent(service)
    if listen and watch_overflows:
        ListenOverflowWatch(reactor).setServiceParent(service)
    if metrics is not None:
        # Only when asked for: it loads twisted.web and prometheus_client,
        # and imports this module.
        from twisted_net.server.metrics import MetricsService

        def udp_descriptors() -> list[int]:
            return [listener.port.fileno() for listener in udp_listeners if listener.port]

        MetricsService(metrics, factory.counters, reactor, udp_descriptors).setServiceParent(
            service
        )
    return service
