"""
The C{twisted-net} command: the tutorial's clients (C{tcp}, C{udp},
C{fetch}) as subcommands over L{twisted_net.client.tcp}, plus C{bench}.

Every failure ends in one line on standard error (C{twisted-net: error:
...}) and a non-zero exit status, never a traceback.  Server output goes to
standard output as bytes, never decoded.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Coroutine, Sequence
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Any, NoReturn

from OpenSSL import SSL
from OpenSSL.crypto import Error as OpenSSLCryptoError
from twisted.internet import error as net_error
from twisted.internet import fdesc
from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import react
from twisted.python.failure import Failure
from twisted.python.filepath import UnlistableError
from twisted.web.client import ResponseFailed

from twisted_net.address import format_host_port
from twisted_net.cli.console import StandardInputLines, StandardOutput
from twisted_net.cli.progress import ProgressBar
from twisted_net.client.errors import TLS_FAILURES, describe_tls_error
from twisted_net.client.fetch import (
    FetchError,
    FetchResult,
    fetch,
    fetch_raw,
    parse_url,
    trust_root_from_pem,
)
from twisted_net.client.tcp import (
    ConversationError,
    client_protocol,
    connect_greeting,
    greet,
    greet_udp,
)
from twisted_net.hello import FRAMING_NAMES, split_line_ending
from twisted_net.udpaddress import parse_udp_address

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

__all__ = ["CLIError", "build_parser", "describe_error", "main"]

PROG = "twisted-net"
DEFAULT_TCP = "tcp:127.0.0.1:9999"
DEFAULT_UDP = "127.0.0.1:9999"
DEFAULT_NAMES = ("Michael", "Tracy", "Sarah")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class CLIError(Exception):
    """
    A failure to report as one line, with an exit status.
    """

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


# Arguments -------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be 0 or more: {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if not value:
        raise argparse.ArgumentTypeError(f"seconds must be more than 0: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _name(text: str) -> bytes:
    """
    A name from the command line, as the bytes the user typed.
    """
    return os.fsencode(text)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """
    The command line of C{twisted-net}.  The C{bench} subcommand's options
    are only loaded (and its module imported) when C{argv} asks for it.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Clients of the twisted-net greeting servers (and the tutorial's "
        "HTTP client), on Twisted.",
    )
    from twisted_net import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tcp = commands.add_parser(
        "tcp",
        help="talk to the TCP greeting server",
        description="Connect, print the greeting and the reply to each name (one per "
        "line), send 'exit' and wait for the server to close.",
        epilog="Endpoints: tcp:HOST:PORT; IPv6 with escaped colons, "
        "tcp:host=\\:\\:1:port=9999; unix:PATH; tls:HOST:PORT, verified against the "
        "system's certificate authorities (tls:HOST:PORT:trustRoots=DIR trusts the PEM "
        "certificates in DIR instead).",
    )
    tcp.add_argument(
        "--connect",
        "-c",
        metavar="ENDPOINT",
        default=DEFAULT_TCP,
        help=f"Twisted client endpoint string (default: {DEFAULT_TCP})",
    )
    tcp.add_argument(
        "--framing",
        choices=FRAMING_NAMES,
        default="seed",
        help="the server's framing: seed (the tutorial's, one message at a time) or "
        "line (CRLF lines, pipelined); default: seed",
    )
    tcp.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="seconds allowed to connect and for each reply (0: no limit; default: 10)",
    )
    tcp.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="send each line of standard input as a message, until end of input "
        "(or a line 'exit'), instead of NAMEs",
    )
    tcp.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        type=_name,
        help=f"messages to send (default: {' '.join(DEFAULT_NAMES)})",
    )

    udp = commands.add_parser(
        "udp",
        help="talk to the UDP greeting server",
        description="Send each name as one datagram and print its reply; a missing "
        "reply is asked for again, then reported with a non-zero exit status.",
    )
    udp.add_argument(
        "--connect",
        "-c",
        metavar="[HOST:]PORT",
        default=DEFAULT_UDP,
        help=f"server address, e.g. 9999, 127.0.0.1:9999, [::1]:9999 (default: {DEFAULT_UDP})",
    )
    udp.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=2.0,
        metavar="S",
        help="seconds to wait for each reply before asking again (default: 2)",
    )
    udp.add_argument(
        "--retries",
        type=_count,
        default=2,
        metavar="N",
        help="times to ask again for a missing reply (default: 2)",
    )
    udp.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        type=_name,
        help=f"messages to send (default: {' '.join(DEFAULT_NAMES)})",
    )

    fetch_parser = commands.add_parser(
        "fetch",
        help="the tutorial's HTTP client: GET a URL",
        description="GET an http or https URL with 'Connection: close' and read until the "
        "server closes. The status line and headers go to standard error, the body to "
        "standard output (or FILE). Chunked bodies are decoded; the connection headers "
        "(Content-Length, Transfer-Encoding, Connection) are consumed by Twisted's HTTP "
        "parser and not shown (--raw shows everything). Redirects are not followed. An "
        "HTTP status of 400 or more gives exit status 1 (the body is still written).",
    )
    fetch_parser.add_argument("url", metavar="URL", help="http://HOST[:PORT]/PATH or https://...")
    fetch_parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the body to FILE instead of standard output"
    )
    fetch_parser.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds allowed without progress (default: 30; 0: no limit)",
    )
    fetch_parser.add_argument(
        "--raw",
        action="store_true",
        help="send the tutorial's request bytes as written and write everything received "
        "(status line, headers, body; undecoded) to the output",
    )
    fetch_parser.add_argument(
        "--ca-file",
        metavar="PEM",
        help="trust the certificate authorities in this PEM file for https (default: the system's)",
    )

    if _first_positional(argv) == "bench":
        from twisted_net.cli import bench

        bench_parser = commands.add_parser(
            "bench", help="measure a greeting server's throughput and latency"
        )
        bench.configure_parser(bench_parser)
    else:
        commands.add_parser(
            "bench", help="measure a greeting server's throughput and latency", add_help=False
        )
    return parser


def _first_positional(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


# Errors ----------------------------------------------------------------------


def describe_error(error: BaseException | Failure) -> str:
    """
    One line that says what went wrong, for any error a client can meet.
    """
    value = error.value if isinstance(error, Failure) else error
    if isinstance(value, (ResponseFailed, net_error.ConnectingCancelledError)):
        reasons = getattr(value, "reasons", None) or []
        if reasons:
            return describe_error(reasons[0])
    if isinstance(value, net_error.ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(value, net_error.DNSLookupError):
        detail = str(value.args[0]) if value.args else ""
        return f"cannot resolve the host name{': ' + detail if detail else ''}"
    if isinstance(value, (TimeoutError, net_error.TimeoutError, CancelledError)):
        return "timed out"
    if isinstance(value, TLS_FAILURES):
        return f"TLS error: {describe_tls_error(value)}"
    if isinstance(value, net_error.ConnectionDone):
        return "the server closed the connection"
    if isinstance(value, net_error.ConnectError):
        return f"cannot connect: {_connect_reason(value)}"
    if isinstance(value, (ConversationError, FetchError, CLIError, ValueError, OSError)):
        if isinstance(value, OSError) and value.strerror:
            where = f": {value.filename}" if value.filename else ""
            return f"{value.strerror}{where}"
        return str(value)
    return f"unexpected {type(value).__name__}: {value}"


def _connect_reason(error: net_error.ConnectError) -> str:
    """
    Why a connection failed: Twisted keeps the C{errno} in C{osError} and
    the system's text, when there is one, in the first argument.
    """
    text = str(error.args[0]) if error.args and error.args[0] else ""
    if not text and isinstance(error.osError, int):
        text = os.strerror(error.osError)
    elif not text and error.osError:
        text = str(error.osError)
    return (text or error.__doc__ or "").strip().rstrip(".")


# Output ----------------------------------------------------------------------


_ENDPOINT_FORMS = {
    "tcp": "tcp:HOST:PORT",
    "tls": "tls:HOST:PORT[:trustRoots=DIR]",
    "ssl": "ssl:HOST:PORT",
    "unix": "unix:PATH",
}
_MISSING = re.compile(r"missing \d+ required positional arguments?: (.*)")
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")
_NOT_A_NUMBER = re.compile(r"invalid literal for int\(\) with base 10: ('.*')")


def _endpoint_problem(description: str, error: Exception) -> str:
    """
    What is wrong with an endpoint string, from whatever Twisted's parsers
    raised (C{TypeError}s of the endpoint's constructor, C{ValueError}s,
    errors reading C{trustRoots} or certificate files).
    """
    kind = description.split(":", 1)[0]
    form = _ENDPOINT_FORMS.get(kind)
    expected = f"; expected {form}" if form else ""
    text = str(error)
    if isinstance(error, TypeError):
        missing = _MISSING.search(text)
        if missing:
            names = re.findall(r"'(\w+)'", missing.group(1))
            return f"missing {' and '.join(names) or 'arguments'}{expected}"
        unexpected = _UNEXPECTED.search(text)
        if unexpected:
            return f"unknown option {unexpected.group(1)!r}{expected}"
        if len(error.args) == 2 and isinstance(error.args[1], list):  # tls: keywords
            return f"unknown option(s) {', '.join(map(str, error.args[1]))}{expected}"
    if isinstance(error, ValueError):
        number = _NOT_A_NUMBER.search(text)
        if number:
            return f"{number.group(1)} is not a number{expected}"
        if text.startswith("Unknown endpoint type"):
            return f"{text}; expected one of {', '.join(form for form in _ENDPOINT_FORMS.values())}"
    if isinstance(error, UnlistableError):
        cause = error.originalException
        where = getattr(cause, "filename", None)
        reason = getattr(cause, "strerror", None) or str(cause)
        return f"cannot read the trustRoots directory{f' {where}' if where else ''}: {reason}"
    if isinstance(error, (SSL.Error, OpenSSLCryptoError)):
        return f"bad certificate: {describe_tls_error(error)}"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}{f': {error.filename}' if error.filename else ''}"
    return (text or type(error).__name__) + expected


def _endpoint(reactor: Any, description: str) -> IStreamClientEndpoint:
    try:
        endpoint: IStreamClientEndpoint = clientFromString(reactor, description)
    except Exception as error:  # the parsers raise all kinds of things
        problem = _endpoint_problem(description, error)
        raise CLIError(f"bad endpoint {description!r}: {problem}", EXIT_USAGE) from None
    return endpoint


# tcp -----------------------------------------------------------------------------


def _warn(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


async def _run_tcp(reactor: Any, args: argparse.Namespace, stdout: StandardOutput) -> int:
    if args.interactive and args.names:
        raise CLIError(
            "-i/--interactive sends the lines of standard input: give no NAMEs with it", EXIT_USAGE
        )
    endpoint = _endpoint(reactor, args.connect)
    where = f"{args.connect}"
    names = args.names or [_name(name) for name in DEFAULT_NAMES]
    try:
        if not args.interactive:
            await greet(
                reactor,
                endpoint,
                names,
                args.framing,
                timeout=args.timeout,
                on_message=stdout.line,
            )
            return 0
        return await _interactive(reactor, endpoint, args)
    except ValueError as error:
        raise CLIError(str(error), EXIT_USAGE) from None
    except (TimeoutError, CancelledError):
        raise CLIError(f"{where}: timed out after {args.timeout:g} s connecting") from None
    except Exception as error:
        raise CLIError(f"{where}: {describe_error(error)}") from None


async def _interactive(
    reactor: Any, endpoint: IStreamClientEndpoint, args: argparse.Namespace
) -> int:
    from twisted.internet.stdio import StandardIO

    lines: StandardInputLines | None = None

    def show(message: bytes) -> None:
        assert lines is not None and lines.transport is not None
        lines.transport.write(split_line_ending(message)[0] + b"\n")

    conversation = client_protocol(args.framing, reactor, args.timeout, show)
    lines = StandardInputLines(conversation, _warn)
    stdio = StandardIO(lines, reactor=reactor)
    try:
        await connect_greeting(reactor, endpoint, conversation, args.timeout)
        await conversation.done
    finally:
        stdio.loseConnection()
        await lines.closed
        for fd in (0, 1):
            with suppress(OSError):
                fdesc.setBlocking(fd)
    return 0


# udp -----------------------------------------------------------------------------


async def _run_udp(reactor: Any, args: argparse.Namespace, stdout: StandardOutput) -> int:
    try:
        host, port = parse_udp_address(args.connect, default_host="127.0.0.1")
    except ValueError as error:
        raise CLIError(str(error), EXIT_USAGE) from None
    where = format_host_port(host, port)
    names = args.names or [_name(name) for name in DEFAULT_NAMES]
    try:
        await greet_udp(
            reactor, host, port, names, args.timeout, args.retries, on_message=stdout.line
        )
    except Exception as error:
        raise CLIError(f"{where}: {describe_error(error)}") from None
    return 0


# fetch ---------------------------------------------------------------------------


def _show_head(result: FetchResult) -> None:
    err = sys.stderr.buffer
    err.write(result.status_line + b"\n")
    for name, value in result.headers:
        err.write(name + b": " + value + b"\n")
    err.write(b"\n")
    err.flush()


async def _run_fetch(reactor: Any, args: argparse.Namespace, stdout: StandardOutput) -> int:
    try:
        parse_url(args.url)
    except ValueError as error:
        raise CLIError(str(error), EXIT_USAGE) from None
    trust_root: IOpenSSLTrustRoot | None = None
    if args.ca_file:
        try:
            trust_root = trust_root_from_pem(args.ca_file)
        except (OSError, ValueError, SSL.Error) as error:
            raise CLIError(f"--ca-file: {describe_error(error)}", EXIT_USAGE) from None
    output: IO[bytes] | StandardOutput
    try:
        output = open(args.output, "wb") if args.output else stdout  # noqa: SIM115
    except OSError as error:
        raise CLIError(f"cannot write {args.output}: {error.strerror}") from None
    bar = ProgressBar(sys.stderr, reactor) if sys.stderr.isatty() else None
    progress: Callable[[int, int | None], None] | None = bar.update if bar else None
    try:
        if args.raw:
            result = await fetch_raw(
                reactor,
                args.url,
                timeout=args.timeout,
                output=output,
                trust_root=trust_root,
                on_progress=progress,
            )
        else:
            result = await fetch(
                reactor,
                args.url,
                timeout=args.timeout,
                output=output,
                trust_root=trust_root,
                on_response=_show_head,
                on_progress=progress,
            )
    except Exception as error:
        raise CLIError(f"{args.url}: {describe_error(error)}") from None
    finally:
        if bar is not None:
            bar.finish()
        if not isinstance(output, StandardOutput):
            output.close()
    if result.status >= 400:
        phrase = result.phrase.decode("ascii", "backslashreplace")
        raise CLIError(f"{args.url}: the server answered {result.status} {phrase}")
    return 0


# main ----------------------------------------------------------------------------

_COMMANDS: dict[
    str, Callable[[Any, argparse.Namespace, StandardOutput], Coroutine[Any, Any, int]]
] = {
    "tcp": _run_tcp,
    "udp": _run_udp,
    "fetch": _run_fetch,
}


async def _run(reactor: Any, args: argparse.Namespace, state: dict[str, bool]) -> None:
    def interrupted() -> None:
        if not state.get("finished"):
            state["interrupted"] = True

    reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    stdout = StandardOutput()
    running = ensureDeferred(_COMMANDS[args.command](reactor, args, stdout))
    stdout.on_broken = running.cancel
    try:
        status = await running
    except Exception as error:
        status = error.status if isinstance(error, CLIError) else EXIT_FAILURE
        if stdout.broken:
            status = EXIT_BROKEN_PIPE
        elif not state.get("interrupted"):
            _warn(f"error: {error if isinstance(error, CLIError) else describe_error(error)}")
    finally:
        state["finished"] = True
    if status:
        raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    Run C{twisted-net} with C{argv} (default: C{sys.argv[1:]}) and exit.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    if args.command == "bench":
        from twisted_net.cli import bench

        raise SystemExit(bench.run(args))
    state: dict[str, bool] = {}
    try:
        react(_run, (args, state))
    except SystemExit:
        if state.get("interrupted"):
            _warn("interrupted")
            raise SystemExit(EXIT_INTERRUPTED) from None
        raise
    raise AssertionError("react() returned")
