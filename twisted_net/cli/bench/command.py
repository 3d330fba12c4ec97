"""
The C{twisted-net bench} command: its options, the C driver, and the run
over each scenario.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted_net.address import format_host_port, parse_host_port
from twisted_net.cli.bench.load import SCENARIOS, LoadRun
from twisted_net.cli.bench.process import process_stats
from twisted_net.cli.bench.report import (
    format_interrupted,
    format_table,
    limit_hints,
    progress_printer,
)
from twisted_net.hello import FRAMING_NAMES

__all__ = ["EXIT_INTERRUPTED", "configure_parser", "main", "run"]

EXIT_INTERRUPTED = 130
"""The exit status after Ctrl-C (128 + SIGINT), as shells report it."""


def _target(text: str) -> tuple[str, int]:
    try:
        return parse_host_port(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
        return value

    return convert


class _HelpFormatter(argparse.HelpFormatter):
    """
    Help text wrapped between words only, so that option names such as
    C{--max-per-peer} are never cut at their hyphens.
    """

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """
    Add the C{bench} subcommand's options to C{parser}.
    """
    parser.formatter_class = _HelpFormatter
    parser.description = (
        "Load a running greeting server and report messages/s, latency "
        "percentiles and errors.  The built-in load generator is pure Python "
        "(a floor, not a ceiling); --driver uses the repository's C driver.  "
        "All the load comes from one host: start the server with its per-host "
        "limits off, 'twist net --udp-rate 0 --max-per-peer 0', or its default "
        "limits (200 datagrams/s and 100 connections per host) show up as errors."
    )
    parser.add_argument(
        "--connect",
        "-c",
        type=_target,
        default=("127.0.0.1", 9999),
        metavar="[HOST:]PORT",
        help="the server: PORT, HOST:PORT or [IPV6]:PORT (default: 127.0.0.1:9999)",
    )
    parser.add_argument(
        "--scenario",
        "-s",
        action="append",
        metavar="NAME",
        help=f"one of {', '.join(SCENARIOS)}, comma-separated or repeated (default: lockstep)",
    )
    parser.add_argument(
        "--duration",
        "-d",
        type=_positive(float),
        default=5.0,
        help="seconds of load per scenario (default: 5)",
    )
    parser.add_argument(
        "--connections",
        "-n",
        type=_positive(int),
        default=50,
        help="connections (churn: concurrent sessions; udp: sockets); default: 50",
    )
    parser.add_argument(
        "--depth",
        type=_positive(int),
        default=16,
        help="pipeline: messages in flight per connection (default: 16)",
    )
    parser.add_argument(
        "--count", type=_positive(int), default=None, help="stop after this many messages"
    )
    parser.add_argument("--message", default="bench", help="the name sent (default: bench)")
    parser.add_argument(
        "--framing",
        choices=FRAMING_NAMES,
        default="seed",
        help="the server's TCP framing (default: seed)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results here")
    parser.add_argument(
        "--pid",
        type=int,
        help="the server's process id, to report its memory and CPU; "
        "with 'twist net --workers N' give the supervisor's: its "
        "workers (child processes) are added in",
    )
    parser.add_argument(
        "--driver",
        type=Path,
        metavar="PATH",
        help="use this compiled C driver (benchmarks/build/driver) "
        "instead of the Python load generator",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def _scenarios(args: argparse.Namespace) -> list[str]:
    names = [n for spec in (args.scenario or ["lockstep"]) for n in spec.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}: choose from {', '.join(SCENARIOS)}")
    return names


def _run_c_driver(args: argparse.Namespace, scenario: str) -> dict[str, Any]:
    host, port = args.connect
    command = [
        str(args.driver),
        "--host",
        host,
        "--port",
        str(port),
        "--scenario",
        scenario,
        "--connections",
        str(args.connections),
        "--duration",
        str(args.duration),
        "--depth",
        str(args.depth),
        "--message",
        args.message,
        "--framing",
        args.framing,
    ]
    if args.count:
        command += ["--count", str(args.count)]
    if not args.quiet:
        command.append("--progress")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None and process.stdout is not None
    show = progress_printer(sys.stderr, scenario)
    problems = []
    last = {"elapsed": 0.0, "messages": 0}
    try:
        for line in process.stderr:
            try:
                tick = json.loads(line)
            except ValueError:
                problems.append(line.strip())
                continue
            if isinstance(tick, dict) and "elapsed" in tick:
                last = tick
                show(tick["elapsed"], tick["messages"])
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        elapsed = float(last["elapsed"])
        return {
            "scenario": scenario,
            "duration_s": elapsed,
            "messages": last["messages"],
            "msgs_per_s": last["messages"] / elapsed if elapsed else 0.0,
            "interrupted": True,
        }
    output = process.stdout.read()
    if process.wait() != 0:
        raise RuntimeError(f"driver failed: {' '.join(problems) or process.returncode}")
    result: dict[str, Any] = json.loads(output)
    return result


def run(args: argparse.Namespace) -> int:
    """
    Run the benchmark described by C{args}; return the exit status.
    """
    try:
        scenarios = _scenarios(args)
    except ValueError as error:
        sys.stderr.write(f"twisted-net: error: {error}\n")
        return 2
    if args.driver is not None and not args.driver.is_file():
        sys.stderr.write(f"twisted-net: error: no driver at {args.driver}\n")
        return 2
    if args.pid is not None and not Path(f"/proc/{args.pid}/stat").exists():
        sys.stderr.write(f"twisted-net: error: --pid: no process {args.pid}\n")
        return 2
    results: list[dict[str, Any]] = []
    try:
        return _run_scenarios(args, scenarios, results)
    except KeyboardInterrupt:  # between scenarios, or in the C driver's setup
        return _interrupted(args, results)


def _interrupted(args: argparse.Namespace, results: list[dict[str, Any]]) -> int:
    """
    Ctrl-C: show what was measured so far on one line, exit 130.
    """
    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write("\n")
    print(format_interrupted(results), flush=True)
    if args.json is not None:
        _write_json(args, results, interrupted=True)
    return EXIT_INTERRUPTED


def _write_json(
    args: argparse.Namespace, results: list[dict[str, Any]], interrupted: bool = False
) -> None:
    document: dict[str, Any] = {"target": format_host_port(*args.connect), "results": results}
    if interrupted:
        document["interrupted"] = True
    args.json.write_text(json.dumps(document, indent=1) + "\n")


def _run_scenarios(
    args: argparse.Namespace, scenarios: list[str], results: list[dict[str, Any]]
) -> int:
    host, port = args.connect
    for scenario in scenarios:
        before = process_stats(args.pid) if args.pid else None
        started = time.monotonic()
        try:
            if args.driver is not None:
                result = _run_c_driver(args, scenario)
            else:
                load = LoadRun(
                    host,
                    port,
                    scenario,
                    args.connections,
                    args.duration,
                    depth=args.depth,
                    message=args.message.encode(),
                    framing=args.framing,
                    count=args.count or 0,
                    progress=None if args.quiet else progress_printer(sys.stderr, scenario),
                )
                result = load.run()
        except (OSError, RuntimeError, ValueError) as error:
            sys.stderr.write(f"\ntwisted-net: error: bench {scenario}: {error}\n")
            return 1
        if not args.quiet:
            sys.stderr.write("\n" if sys.stderr.isatty() else "")
        result["engine"] = "c" if args.driver is not None else "python"
        if before is not None:
            after = process_stats(args.pid)
            result["server_cpu"] = (after[0] - before[0]) / (time.monotonic() - started)
            result["server_peak_rss_kib"] = after[1]
        results.append(result)
        if result.get("interrupted"):
            return _interrupted(args, results)
    print(format_table(results))
    if args.driver is None:
        print("(Python load generator: a floor, not a ceiling; --driver for exact figures)")
    if args.json is not None:
        _write_json(args, results)
    for result in results:
        if result["messages"]:
            for hint in limit_hints(result):
                sys.stderr.write(f"twisted-net: note: bench {result['scenario']}: {hint}\n")
    failed = [r for r in results if r["messages"] == 0]
    for result in failed:
        detail = ", ".join(f"{k} {v}" for k, v in result["error_detail"].items() if v)
        sys.stderr.write(
            f"twisted-net: error: bench {result['scenario']}: no replies "
            f"from {format_host_port(host, port)} ({detail or 'no errors either'})\n"
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """
    Run as C{python -m twisted_net.cli.bench} (the same as C{twisted-net bench}).
    """
    parser = argparse.ArgumentParser(prog="twisted-net bench")
    configure_parser(parser)
    return run(parser.parse_args(argv))
