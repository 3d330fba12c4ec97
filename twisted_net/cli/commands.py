"""
The C{tcp}, C{udp} and C{fetch} subcommands of C{twisted-net}, over the
client functions of L{twisted_net.client}.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Any

from OpenSSL import SSL
from twisted.internet import fdesc
from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IStreamClientEndpoint

from twisted_net.address import format_host_port, parse_host_port
from twisted_net.cli.console import StandardInputLines, StandardOutput
from twisted_net.cli.errors import EXIT_USAGE, CLIError, describe_error
from twisted_net.cli.parser import DEFAULT_NAMES, PROG, command_line_name
from twisted_net.cli.progress import ProgressBar
from twisted_net.client.endpoints import client_endpoint
from twisted_net.client.fetch import (
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
from twisted_net.hello import split_line_ending

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot


__all__ = ["COMMANDS", "warn"]


def warn(text: str) -> None:
    """
    One line on standard error, after the command's name.
    """
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


def _endpoint(reactor: Any, text: str, timeout: float = 30.0) -> IStreamClientEndpoint:
    """
    The endpoint of C{--connect}; a bad one is a usage error.
    """
    try:
        return client_endpoint(reactor, text, timeout)
    except ValueError as error:
        raise CLIError(str(error), EXIT_USAGE) from None


async def _run_tcp(reactor: Any, args: argparse.Namespace, stdout: StandardOutput) -> int:
    if args.interactive and args.names:
        raise CLIError(
            "-i/--interactive sends the lines of standard input: give no NAMEs with it", EXIT_USAGE
        )
    endpoint = _endpoint(reactor, args.connect, args.timeout)
    where = f"{args.connect}"
    names = args.names or [command_line_name(name) for name in DEFAULT_NAMES]
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
    lines = StandardInputLines(conversation, warn)
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
        host, port = parse_host_port(args.connect, kind="UDP address")
    except ValueError as error:
        raise CLIError(str(error), EXIT_USAGE) from None
    where = format_host_port(host, port)
    names = args.names or [command_line_name(name) for name in DEFAULT_NAMES]
    try:
        await greet_udp(
            reactor, host, port, names, args.timeout, args.retries, on_message=stdout.line
        )
    except ConversationError as error:
        raise CLIError("\n".join(f"{where}: {problem}" for problem in error.problems)) from None
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
        phrase = result.phrase.decode("ascii", "backslashreplace").strip()
        status = f"{result.status} {phrase}" if phrase else str(result.status)
        raise CLIError(f"{args.url}: the server answered {status}")
    return 0


# main ----------------------------------------------------------------------------

COMMANDS: dict[
    str, Callable[[Any, argparse.Namespace, StandardOutput], Coroutine[Any, Any, int]]
] = {
    "tcp": _run_tcp,
    "udp": _run_udp,
    "fetch": _run_fetch,
}
