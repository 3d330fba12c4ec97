"""
C{twist net}: command-line options and the service they describe.

Parsing and validation only: the options of the server's limits come from
L{twisted_net.config.ServerConfig}'s fields, endpoint strings are read by
L{twisted_net.server.endpoints}, and the service is wired by
L{twisted_net.server.service.build_service} (or, with C{--workers}, by
L{twisted_net.server.workers.supervisor.build_supervisor}).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar

from twisted.application.service import IService
from twisted.logger import LogLevel
from twisted.python import usage

from twisted_net.config import MAX_DELAY, command_line_options, config_from_options, number
from twisted_net.hello import FRAMING_NAMES
from twisted_net.logoutput import BUFFERED
from twisted_net.netepoll.lean import import_twisted
from twisted_net.server.endpoints import describe_listener, endpoint_error, tls_unneeded
from twisted_net.server.service import ServingNetService, build_service
from twisted_net.server.workers.supervisor import build_supervisor
from twisted_net.udpaddress import parse_udp_address

__all__ = ["DEFAULT_LISTEN", "DEFAULT_UDP", "MAX_DELAY", "Options", "build_service", "makeService"]

DEFAULT_LISTEN = "tcp:9999:interface=127.0.0.1"
DEFAULT_UDP = "127.0.0.1:9999"


def _framing(text: str) -> str:
    if text not in FRAMING_NAMES:
        raise ValueError(f"framing must be one of {', '.join(FRAMING_NAMES)}, not {text!r}")
    return text


_framing.coerceDoc = ""  # type: ignore[attr-defined]


def refusing(coerce: Callable[[str], Any]) -> Callable[[str], Any]:
    """
    A parameter's coercer whose C{ValueError} (already in the user's words)
    is a C{usage.UsageError} as it stands: C{usage.Options} would otherwise
    put "Parameter type enforcement failed:" in front of it.
    """

    def coerced(text: str) -> Any:
        try:
            return coerce(text)
        except ValueError as error:
            raise usage.UsageError(str(error)) from None

    coerced.coerceDoc = getattr(coerce, "coerceDoc", "")  # type: ignore[attr-defined]
    return coerced


def prefer_fast_reactor() -> None:
    """
    Install the C{netepoll} reactor (L{twisted_net.netepoll.install}) unless
    a reactor is already installed (C{twist --reactor NAME} installs its
    choice before this runs, so the choice stays free); where epoll is
    missing, Twisted's default stays.
    """
    if "twisted.internet.reactor" in sys.modules:
        return
    from twisted_net.netepoll import install

    try:
        install()  # checked: Twisted's epoll reactor if netepoll's internals moved
    except ImportError:
        return


def _config_options() -> tuple[list[list[str | None]], list[list[Any]]]:
    """
    The flags and parameters of L{twisted_net.config.ServerConfig}'s fields.
    """
    flags: list[list[str | None]] = []
    parameters: list[list[Any]] = []
    for _, kind, default, spec in command_line_options():
        if spec.flag:
            flags.append([spec.name, None, spec.help])
        else:
            parameters.append([spec.name, None, default, spec.help, refusing(spec.coercer(kind))])
    return flags, parameters


_CONFIG_FLAGS, _CONFIG_PARAMETERS = _config_options()


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
        *_CONFIG_FLAGS,
    ]

    optParameters: ClassVar[list[list[Any]]] = [
        [
            "framing",
            None,
            "seed",
            "TCP framing: 'seed' (the tutorial's, byte for byte) "
            "or 'line' (CRLF lines, for programs that pipeline).",
            refusing(_framing),
        ],
        *_CONFIG_PARAMETERS,
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
            refusing(number(int, "--workers", 1)),
        ],
    ]

    compData = usage.Completions(optActions={"framing": usage.CompleteList(list(FRAMING_NAMES))})

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
        haproxy:tcp:9999.  Default: tcp:9999:interface=127.0.0.1.  The
        listen backlog is the system's somaxconn (else 1024) unless the
        string sets backlog=N.
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
        """
        Check the command line as a whole and build C{self["config"]}.

        One side effect, which must happen here: the reactor is installed
        (L{prefer_fast_reactor}), before C{twist} installs its default after
        this returns, while an explicit C{twist --reactor X} has already
        installed X.  It is installed, with Twisted's endpoint parsers,
        without pyOpenSSL when no endpoint needs TLS and these options are
        C{twist}'s (L{twisted_net.netepoll.lean.import_twisted}).
        """
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
        reactor = import_twisted(
            _under_twist(self) and tls_unneeded(endpoints), prefer_fast_reactor
        )
        for description in self["listen"]:
            error = endpoint_error(reactor, description)
            if error is not None:
                raise usage.UsageError(f"bad --listen endpoint {description!r}: {error}")
        if self["workers"] > 1:
            _check_shareable(self)
        if self["metrics"] is not None:
            error = endpoint_error(reactor, self["metrics"], gated=False)
            if error is not None:
                raise usage.UsageError(f"bad --metrics endpoint {self['metrics']!r}: {error}")
        self["config"] = config_from_options(self, log_connections=_logs_info(self))


def _under_twist(options: usage.Options) -> bool:
    """
    Whether these options are the C{net} subcommand of a C{twist} command
    line: only then is this process a server of its own, whose imports the
    options may shape (a test or a program parsing options must keep
    whatever it has imported).

    C{twist}'s options are known by what they publicly do: they install a
    reactor, by its name, once their subcommand is parsed (C{installReactor}
    and C{reactorName}).  Should C{twist} change, this says C{False}, which
    costs only the memory saving.
    """
    parent = getattr(options, "parent", None)
    return (
        isinstance(parent, usage.Options)
        and callable(getattr(parent, "installReactor", None))
        and "reactorName" in parent
    )


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


def _check_shareable(options: Options) -> None:
    """
    Refuse, before anything starts, what C{--workers} cannot share.
    """
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


def batch_log_output(options: usage.Options) -> bool:
    """
    Have C{twist} write its log in batches: swap the stock text or JSON file
    observer factory among its options for the one in
    L{twisted_net.logoutput.BUFFERED} that writes the same lines, one write
    per reactor iteration.  C{twist} makes its observer from its options
    after C{makeService}.  Any other factory, or options that are not
    C{twist}'s, are left as they are.

    @return: whether the output is now batched.
    """
    parent = getattr(options, "parent", None)
    if not _under_twist(options) or not isinstance(parent, usage.Options):
        return False
    batched = BUFFERED.get(parent.get("fileLogObserverFactory"))  # type: ignore[arg-type]
    if batched is None:
        return False
    parent["fileLogObserverFactory"] = batched
    return True


def makeService(config: Options) -> IService:
    """
    The service of C{twist net}, from parsed L{Options}.

    One side effect: under C{twist}, its log output is batched
    (L{batch_log_output}), since this is the last hook before C{twist}
    starts logging.
    """
    batch_log_output(config)
    if config["workers"] > 1:
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
        service_class=ServingNetService,
        metrics=config["metrics"],
    )
