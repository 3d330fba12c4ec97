"""
The C{twisted-net} command: the tutorial's clients (C{tcp}, C{udp},
C{fetch}) as subcommands over L{twisted_net.client.tcp}, plus C{bench}.

Every failure ends in one line on standard error (C{twisted-net: error:
...}) and a non-zero exit status, never a traceback.  Server output goes to
standard output as bytes, never decoded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from twisted_net.cli.commands import COMMANDS, warn
from twisted_net.cli.console import StandardOutput
from twisted_net.cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    CLIError,
    describe_error,
)
from twisted_net.cli.parser import build_parser

__all__ = ["main"]


async def _run(reactor: Any, args: argparse.Namespace, state: dict[str, bool]) -> None:
    def interrupted() -> None:
        if not state.get("finished"):
            state["interrupted"] = True

    reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    stdout = StandardOutput()
    running = ensureDeferred(COMMANDS[args.command](reactor, args, stdout))
    stdout.on_broken = running.cancel
    try:
        status = await running
    except Exception as error:
        status = error.status if isinstance(error, CLIError) else EXIT_FAILURE
        if stdout.broken:
            status = EXIT_BROKEN_PIPE
        elif not state.get("interrupted"):
            text = str(error) if isinstance(error, CLIError) else describe_error(error)
            for line in text.splitlines():
                warn(f"error: {line}")
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
            warn("interrupted")
            raise SystemExit(EXIT_INTERRUPTED) from None
        raise
    raise AssertionError("react() returned")
