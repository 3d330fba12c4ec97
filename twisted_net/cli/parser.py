"""
The command line of C{twisted-net}: its subcommands, options and defaults.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from twisted_net.hello import FRAMING_NAMES

__all__ = [
    "DEFAULT_NAMES",
    "DEFAULT_TCP",
    "DEFAULT_UDP",
    "PROG",
    "build_parser",
    "command_line_name",
]

PROG = "twisted-net"
DEFAULT_TCP = "tcp:127.0.0.1:9999"
DEFAULT_UDP = "127.0.0.1:9999"
DEFAULT_NAMES = ("Michael", "Tracy", "Sarah")


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


def command_line_name(text: str) -> bytes:
    """
    A name from the command line, as the bytes the user typed.
    """
    return os.fsencode(text)


class _Subcommand(argparse.ArgumentParser):
    """
    A subcommand's parser that refuses unknown arguments itself, so that
    C{twisted-net tcp --bogus} shows the usage of C{tcp}, not the top-level
    one (argparse hands a subcommand's leftovers back to its parent).
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


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
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Subcommand
    )

    tcp = commands.add_parser(
        "tcp",
        help="talk to the TCP greeting server",
        description="Connect, print the greeting and the reply to each name (one per "
        "line), send 'exit' and wait for the server to close.",
        epilog="Where: [HOST:]PORT or [IPV6]:PORT (e.g. 9999, 127.0.0.1:9999, localhost:9999, "
        "[::1]:9999), or a Twisted client endpoint string: tcp:HOST:PORT (IPv6 with "
        "escaped colons, tcp:host=\\:\\:1:port=9999); unix:PATH; tls:HOST:PORT, verified "
        "against the system's certificate authorities (tls:HOST:PORT:trustRoots=DIR trusts "
        "the PEM certificates in DIR instead).",
    )
    tcp.add_argument(
        "--connect",
        "-c",
        metavar="WHERE",
        default=DEFAULT_TCP,
        help="[HOST:]PORT, [IPV6]:PORT or a Twisted client endpoint string "
        f"(default: {DEFAULT_TCP})",
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
        type=command_line_name,
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
        type=command_line_name,
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
    fetch_parser.add_argument(
        "url",
        metavar="URL",
        help="http://HOST[:PORT]/PATH, https://..., or HOST:PORT[/PATH] for http",
    )
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
