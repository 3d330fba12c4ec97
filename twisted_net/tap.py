"""
C{twist net}: command-line options and the service they describe.

Parsing and validation only; the behaviour lives in L{twisted_net.server.stream},
L{twisted_net.server.datagram} and L{twisted_net.server.service}.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any, ClassVar

from twisted.application.runner._exit import ExitStatus, exit
from twisted.application.service import IService
from twisted.internet.error import CannotListenError
from twisted.logger import LogLevel
from twisted.python import usage

from twisted_net.config import ServerConfig
from twisted_net.netepoll.lean import openssl_hidden, tls_unneeded
from twisted_net.server.datagram import GreetingDatagramProtocol
from twisted_net.server.service import DatagramListener, NetService, StreamListener
from twisted_net.server.stream import FRAMINGS, GreetingFactory
from twisted_net.udpaddress import parse_udp_address

__all__ = ["DEFAULT_LISTEN", "DEFAULT_UDP", "Options", "makeService"]

DEFAULT_LISTEN = "tcp:9999:interface=127.0.0.1"
DEFAULT_UDP = "127.0.0.1:9999"
MAX_DELAY = 3600.0
"""The longest --delay accepted: beyond it no client would wait for a reply."""

_DEFAULTS = ServerConfig()


def _number(
    kind: Callable[[str], Any], name: str, minimum: float = 0, maximum: float = math.inf
) -> Callable[[str], Any]:
    def coerce(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, not {text!r}") from None
        if value < minimum or value != value:
            raise ValueError(f"{name} must be at least {minimum}, not {text!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {text!r}")
        if value > maximum:
            raise ValueError(f"{name} must be at most {maximum:g}, not {text!r}")
        return value

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


def _framing(text: str) -> str:
    if text not in FRAMINGS:
        raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, not {text!r}")
    return text


_framing.coerceDoc = ""  # type: ignore[attr-defined]


def prefer_fast_reactor() -> None:
    """
    Install L{twisted_net.netepoll.install}'s reactor unless a reactor is already
    installed (C{twist --reactor NAME} installs its choice before this runs,
    so the choice stays free); where epoll is missing, Twisted's default
    stays.
    """
    if "twisted.internet.reactor" in sys.modules:
        return
    from twisted_net.netepoll import install

    try:
        install()  # checked: Twisted's epoll reactor if netepoll's internals moved
    except ImportError:
        return


class Options(usage.Options):
    """
    Options of C{twist net}.
    """

    synopsis = "[options]"
    longdesc = (
        "A TCP and UDP greeting server: it greets each TCP connection with "
        "'Welcome!', answers every message M with 'Hello, M!', and closes on "
        "'exit'; every UDP datagram M gets 'Hello, M!'. "
        f"By default it listens on {DEFAULT_LISTEN} and UDP {DEFAULT_UDP}."
    )

    optFlags: ClassVar[list[list[str | None]]] = [
        ["no-tcp", None, "Do not listen on TCP (a UDP-only service)."],
        ["no-udp", None, "Do not listen on UDP (a TCP-only service)."],
        ["log-messages", None, "Log every message received (costs throughput)."],
    ]

    optParameters: ClassVar[list[list[Any]]] = [
        [
            "framing",
            None,
            "seed",
            "TCP framing: 'seed' (the tutorial's, byte for byte) "
            "or 'line' (CRLF lines, for programs that pipeline).",
            _framing,
        ],
        [
            "delay",
            None,
            _DEFAULTS.delay,
            "Seconds to wait before each reply (the tutorial sleeps 1).",
            _number(float, "--delay", 0, MAX_DELAY),
        ],
        [
            "max-message",
            None,
            _DEFAULTS.max_message,
            "Longest message answered, in bytes; longer ones get an error.",
            _number(int, "--max-message", 1),
        ],
        [
            "idle-timeout",
            None,
            _DEFAULTS.idle_timeout,
            "Close TCP connections silent this many seconds (0: never).",
            _number(float, "--idle-timeout"),
        ],
        [
            "message-timeout",
            None,
            _DEFAULTS.message_timeout,
            "Close a 'line' "
            "connection whose partial message is not completed in this many seconds "
            "(0: never).",
            _number(float, "--message-timeout"),
        ],
        [
            "write-timeout",
            None,
            _DEFAULTS.write_timeout,
            "Abort a TCP connection "
            "whose peer does not read its replies for this many seconds (0: never).",
            _number(float, "--write-timeout"),
        ],
        [
            "max-connections",
            None,
            _DEFAULTS.max_connections,
            "TCP connections open at once (0: no limit).",
            _number(int, "--max-connections"),
        ],
        [
            "max-per-peer",
            None,
            _DEFAULTS.max_per_peer,
            "TCP connections open at once from one host (0: no limit).",
            _number(int, "--max-per-peer"),
        ],
        [
            "udp-rate",
            None,
            _DEFAULTS.udp_rate,
            "Datagrams per second answered for one source host (0: no limit).",
            _number(float, "--udp-rate"),
        ],
        [
            "udp-burst",
            None,
            _DEFAULTS.udp_burst,
            "Datagrams one source host may send at once above the rate.",
            _number(int, "--udp-burst", 1),
        ],
        [
            "shutdown-timeout",
            None,
            _DEFAULTS.shutdown_timeout,
            "On stop, seconds to wait for owed replies before aborting.",
            _number(float, "--shutdown-timeout"),
        ],
        [
            "queue-limit",
            None,
            _DEFAULTS.queue_limit,
            "Bytes of delayed replies (--delay) "
            "one TCP connection may have waiting before the server stops reading from it.",
            _number(int, "--queue-limit", 1),
        ],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics over HTTP at /metrics on this "
            "Twisted endpoint, e.g. tcp:9100:interface=127.0.0.1 (default: off).",
        ],
        [
            "workers",
            None,
            1,
            "Serve with this many processes sharing the listening "
            "sockets (Linux SO_REUSEPORT; tcp:, tcp6:, ssl: and haproxy: endpoints, and "
            "UDP): a supervisor binds them, restarts a worker that dies, and stops all on "
            "SIGTERM.  --max-connections, --max-per-peer and --udp-rate then apply per "
            "worker.",
            _number(int, "--workers", 1),
        ],
    ]

    compData = usage.Completions(optActions={"framing": usage.CompleteList(list(FRAMINGS))})

    def __init__(self) -> None:
        super().__init__()
        # usage.Options prints opt_* docstrings as they are; on Python < 3.13
        # their indentation would show up as runs of spaces in --help.
        for name in ("listen", "udp"):
            self.docs[name] = " ".join(self.docs[name].split())
        self["listen"] = []
        self["udp"] = []
        self._refused = False

    def parseOptions(self, options: Any = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError:
            self._refused = True
            raise

    def getUsage(self, width: int | None = None) -> str:
        """
        The full option list, except after a bad command line: then C{twist}
        prints the error and this one line under it, so that the error is
        not lost above fifty lines of help.
        """
        if self._refused:
            return "Run 'twist net --help' to see every option.\n"
        return super().getUsage(width)

    def opt_listen(self, description: str) -> None:
        """
        Listen for TCP on a Twisted endpoint string (repeatable), e.g.
        tcp:9999, tcp6:9999:interface=\\:\\:1, ssl:9443:privateKey=key.pem,
        unix:/run/net.sock, systemd:domain=INET:name=net,
        haproxy:tcp:9999.  Default: tcp:9999:interface=127.0.0.1.
        """
        self["listen"].append(description)

    opt_l = opt_listen

    def opt_udp(self, address: str) -> None:
        """
        Listen for UDP on [HOST:]PORT (repeatable), e.g. 9999 (all IPv4
        interfaces), 127.0.0.1:9999, [::1]:9999.  Default: 127.0.0.1:9999.
        """
        try:
            self["udp"].append(parse_udp_address(address, numeric=True))
        except ValueError as error:
            raise usage.UsageError(str(error)) from None

    def postOptions(self) -> None:
        if self["no-tcp"] and self["no-udp"]:
            raise usage.UsageError("--no-tcp and --no-udp together leave nothing to serve")
        if self["no-tcp"] and self["listen"]:
            raise usage.UsageError("--no-tcp contradicts --listen")
        if self["no-udp"] and self["udp"]:
            raise usage.UsageError("--no-udp contradicts --udp")
        if not self["listen"] and not self["no-tcp"]:
            self["listen"] = [DEFAULT_LISTEN]
        if not self["udp"] and not self["no-udp"]:
            self["udp"] = [parse_udp_address(DEFAULT_UDP)]
        endpoints = [*self["listen"], *([self["metrics"]] if self["metrics"] is not None else [])]
        with openssl_hidden(_under_twist(self) and tls_unneeded(endpoints)):
            # The reactor (twisted.internet.tcp, posixbase) and the endpoint
            # parsers are imported here first: without pyOpenSSL when no
            # endpoint needs TLS (twisted_net.netepoll.lean).
            prefer_fast_reactor()
            from twisted.internet.endpoints import serverFromString
        from twisted.internet import reactor

        for description in self["listen"]:
            try:
                serverFromString(reactor, description)
            except Exception as error:
                raise usage.UsageError(f"bad --listen endpoint {description!r}: {error}") from None
        if self["workers"] > 1:
            _check_shareable(self)
        if self["metrics"] is not None:
            try:
                serverFromString(reactor, self["metrics"])
            except Exception as error:
                raise usage.UsageError(
                    f"bad --metrics endpoint {self['metrics']!r}: {error}"
                ) from None
        self["config"] = ServerConfig(
            delay=self["delay"],
            max_message=self["max-message"],
            idle_timeout=self["idle-timeout"],
            message_timeout=self["message-timeout"],
            write_timeout=self["write-timeout"],
            max_connections=self["max-connections"],
            max_per_peer=self["max-per-peer"],
            udp_rate=self["udp-rate"],
            udp_burst=self["udp-burst"],
            log_messages=bool(self["log-messages"]),
            log_connections=_logs_info(self),
            shutdown_timeout=self["shutdown-timeout"],
            queue_limit=self["queue-limit"],
        )


def _under_twist(options: usage.Options) -> bool:
    """
    Whether these options are the C{net} subcommand of a C{twist} command
    line: only then is this process a server of its own, whose imports the
    options may shape (a test or a program parsing options must keep
    whatever it has imported).
    """
    twist = sys.modules.get("twisted.application.twist._options")
    parent = getattr(options, "parent", None)
    return twist is not None and isinstance(parent, twist.TwistOptions)


def _logs_info(options: usage.Options) -> bool:
    """
    Whether info events can reach the log: not under C{twist --log-level
    warn} (or C{error}, C{critical}), whose filter drops them, so that the
    server need not build two events per connection only to drop them.
    """
    parent = getattr(options, "parent", None)
    level = parent.get("logLevel") if isinstance(parent, usage.Options) else None
    levels = list(LogLevel.iterconstants())
    if level not in levels:
        return True
    return levels.index(level) <= levels.index(LogLevel.info)


class _ExitOnListenFailure(NetService):
    """
    The service C{twist net} runs: a port that cannot be bound ends the
    program with one clear line and a non-zero status, not a traceback.
    """

    def startService(self) -> None:
        try:
            super().startService()
        except (CannotListenError, OSError, ValueError, OverflowError) as error:
            for child in list(self):
                if child.running:
                    child.stopService()
            exit(ExitStatus.EX_UNAVAILABLE, f"twist net: error: cannot listen: {error}")


def build_service(
    config: ServerConfig,
    framing: str,
    listen: list[str],
    udp: list[tuple[str, int]],
    reactor: Any = None,
    service_class: type[NetService] = NetService,
    metrics: str | None = None,
) -> NetService:
    """
    Wire one factory and one datagram protocol to every listener.

    @param listen: TCP server endpoint strings.
    @param udp: C{(host, port)} pairs to listen on for UDP.
    @param metrics: server endpoint string for the Prometheus page, or C{None}.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    factory = GreetingFactory(framing, config, clock=reactor)
    datagrams = GreetingDatagramProtocol(config, counters=factory.counters, clock=reactor)
    service = service_class(factory, datagrams)
    for description in listen:
        StreamListener(description, factory, reactor).setServiceParent(service)
    for index, (host, port) in enumerate(udp):
        protocol = datagrams if index == 0 else datagrams.for_another_port()
        DatagramListener(host, port, protocol, reactor).setServiceParent(service)
    if metrics is not None:
        from twisted_net.server.metrics import MetricsService

        MetricsService(metrics, factory.counters, reactor).setServiceParent(service)
    return service


def _check_shareable(options: Options) -> None:
    """
    Refuse, before anything starts, what C{--workers} cannot share.
    """
    from twisted_net.server.workers.supervisor import describe_listener

    if not sys.platform.startswith("linux"):
        raise usage.UsageError(
            "--workers needs Linux, whose SO_REUSEPORT spreads connections over the workers"
        )
    if options["metrics"] is not None:
        raise usage.UsageError("--metrics cannot be combined with --workers yet")
    for description in options["listen"]:
        try:
            describe_listener(description)
        except Exception as error:
            raise usage.UsageError(str(error)) from None


def makeService(config: Options) -> IService:
    """
    The service of C{twist net}, from parsed L{Options}.
    """
    if config["workers"] > 1:
        from twisted_net.server.workers.supervisor import build_supervisor

        return build_supervisor(
            config["config"],
            config["framing"],
            config["listen"],
            config["udp"],
            config["workers"],
        )
    return build_service(
        config["config"],
        config["framing"],
        config["listen"],
        config["udp"],
        service_class=_ExitOnListenFailure,
        metrics=config["metrics"],
    )
