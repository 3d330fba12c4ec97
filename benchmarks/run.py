#!/usr/bin/env python3
"""
Benchmark C{twist net} against peer servers of the same protocol.

Builds the C load driver and the C epoll server into C{benchmarks/build/},
then, for several rounds, starts each server fresh for each scenario (pinned
to one CPU, on 127.0.0.1 and a free port), waits until it answers, runs the C
driver (pinned to the other CPU) for a few seconds, and reads the server's
memory and CPU time from C{/proc}: its RSS once it answers (idle), during the
load (with every connection open) and at the end, and from the first two its
memory per connection held.  Servers are interleaved round-robin within
each round so that background noise spreads over all of them.  Prints the
median of each (server, scenario) and its ratio to the baseline (uvloop),
writes every run to C{benchmarks/results/*.json} and draws the ratios into
C{benchmarks/chart.png}.

Run from the repository, in a virtualenv with the project installed with its
C{bench} extra (C{pip install '.[bench]'})::

    python benchmarks/run.py                       # everything, 3 rounds of 3 s
    python benchmarks/run.py --servers twisted,uvloop --scenarios lockstep-50
    python benchmarks/run.py --ours 'twist --reactor asyncio --log-level warn net {net_args}'
    python benchmarks/run.py --compare benchmarks/results/latest.json

Server commands are templates: C{{host}}, C{{port}}, C{{python}} (this
interpreter), C{{bin}} (its scripts directory), C{{peers}}, C{{build}} and,
for C{twist net}, C{{net_args}} (listen addresses and limits switched off).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
PEERS = HERE / "peers"
RESULTS = HERE / "results"
CHART = HERE / "chart.png"

NET_ARGS = (
    "--listen tcp:{port}:interface={host}:backlog=4096 --udp {host}:{port} "
    "--max-connections 20000 --max-per-peer 0 --udp-rate 0 "
    "--idle-timeout 0 --message-timeout 0 --write-timeout 0"
)
"""C{twist net} options for a benchmark: our addresses, every limit off."""

SERVERS: dict[str, str] = {
    "twisted": "{bin}/twist --log-level warn net {net_args}",
    "twisted-default": "{bin}/twist net {net_args}",
    "threaded": "{python} {peers}/threaded.py --host {host} --port {port}",
    "asyncio": "{python} {peers}/asyncio_server.py --host {host} --port {port}",
    "uvloop": "{python} {peers}/asyncio_server.py --host {host} --port {port} --uvloop",
    "epoll-c": "{build}/epoll_server --host {host} --port {port}",
}
"""The servers compared, by name: command templates."""


SATURATED = 0.9
"""CPU share above which a process is taken as the bottleneck of a run."""

NAN = float("nan")

HOLDING = ("lockstep", "pipeline")
"""Scenario kinds that hold their connections open for the whole run."""


@dataclass(frozen=True)
class Scenario:
    """
    One load shape, as C{driver} options.
    """

    kind: str
    connections: int
    depth: int = 1

    def driver_args(self) -> list[str]:
        args = ["--scenario", self.kind, "--connections", str(self.connections)]
        if self.kind == "pipeline":
            args += ["--depth", str(self.depth)]
        return args


SCENARIOS: dict[str, Scenario] = {
    "lockstep-50": Scenario("lockstep", 50),
    "lockstep-1k": Scenario("lockstep", 1000),
    "lockstep-10k": Scenario("lockstep", 10000),
    "pipeline-10x16": Scenario("pipeline", 10, 16),
    "churn-50": Scenario("churn", 50),
    "udp-50": Scenario("udp", 50),
}


# Building ------------------------------------------------------------------


def build(directory: Path = BUILD, verbose: bool = True) -> dict[str, Path]:
    """
    Compile the C driver and C server with the system C{cc -O2} when their
    sources are newer than the binaries.

    @return: the binaries by name.
    """
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("run.py: error: no C compiler (cc) found")
    directory.mkdir(parents=True, exist_ok=True)
    sources = {"driver": HERE / "driver.c", "epoll_server": PEERS / "epoll_server.c"}
    binaries = {}
    for name, source in sources.items():
        binary = directory / name
        if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
            if verbose:
                print(f"building {binary}", file=sys.stderr)
            subprocess.run([cc, "-O2", "-pthread", "-o", str(binary), str(source)], check=True)
        binaries[name] = binary
    return binaries


# Servers -------------------------------------------------------------------


def raise_nofile() -> None:
    """
    Raise our open-files limit to the hard one; the servers inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port(host: str) -> int:
    """
    A port free for both TCP and UDP on C{host} (racy, but retried on use).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def pinned(cpu: str | None, command: list[str]) -> list[str]:
    """
    C{command} run on CPU C{cpu} (via C{taskset}, which execs it: same PID).
    """
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", cpu, *command]


def answers(host: str, port: int, udp: bool, timeout: float = 0.5) -> bool:
    """
    Whether a greeting server answers on C{port}: TCP C{Welcome!}, then (if
    C{udp}) a datagram answered with C{Hello, ready!}.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_connection((host, port), timeout=timeout) as tcp:
            got = b""
            while len(got) < 8:
                chunk = tcp.recv(64)
                if not chunk:
                    return False
                got += chunk
            if not got.startswith(b"Welcome!"):
                return False
            tcp.sendall(b"exit")
        if udp:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.sendto(b"ready", (host, port))
                data, _ = sock.recvfrom(256)
                return data == b"Hello, ready!"
        return True
    except OSError:
        return False


class Server:
    """
    One server process started for one run.
    """

    def __init__(
        self, name: str, template: str, host: str, port: int, cpu: str | None, build_dir: Path
    ) -> None:
        fields = {
            "host": host,
            "port": port,
            "python": sys.executable,
            "bin": str(Path(sys.executable).parent),
            "peers": str(PEERS),
            "build": str(build_dir),
        }
        fields["net_args"] = NET_ARGS.format(**fields)
        self.name = name
        self.command = shlex.split(template.format(**fields))
        self.host = host
        self.port = port
        logs = build_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)  # instructions.py starts servers without main()
        self._log = (logs / f"{name}.log").open("ab")
        self.process = subprocess.Popen(
            pinned(cpu, self.command),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, udp: bool, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            if answers(self.host, self.port, udp):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {timeout} s")

    def proc_status(self) -> dict[str, int]:
        """
        C{VmRSS} and C{VmHWM} in KiB, from C{/proc/PID/status}.
        """
        found: dict[str, int] = {}
        try:
            text = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return found
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found

    def cpu_seconds(self) -> float:
        """
        User plus system CPU time used so far (all threads).
        """
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


# Running -------------------------------------------------------------------


def run_driver(
    driver: Path,
    server: Server,
    scenario: Scenario,
    options: argparse.Namespace,
) -> tuple[dict[str, Any], float, float, int]:
    """
    Run the C driver once against C{server}.

    @return: the driver's JSON result, the server's CPU seconds and the
        wall-clock seconds of the measured window (from the driver's
        C{start} to its C{stop} event, so that connection set-up and
        tear-down are left out), and the server's RSS in KiB under load: read
        at the driver's last report inside that window (C{start} or a
        progress line), while every connection is still open (0 if unread).
    """
    command = pinned(
        options.driver_cpu,
        [
            str(driver),
            "--host",
            server.host,
            "--port",
            str(server.port),
            *scenario.driver_args(),
            "--duration",
            str(options.duration),
            "--message",
            options.message,
            "--threads",
            str(options.driver_threads),
            "--progress",
        ],
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    marks: dict[str, tuple[float, float]] = {}
    problems = []
    load_rss = 0
    for line in process.stderr:
        try:
            report = json.loads(line)
            event = report.get("event")
        except (ValueError, AttributeError):
            problems.append(line.strip())
            continue
        if event in ("start", "stop"):
            marks[event] = (server.cpu_seconds(), time.monotonic())
        if "stop" not in marks and (event == "start" or "elapsed" in report):
            load_rss = server.proc_status().get("VmRSS", load_rss)
    output = process.stdout.read()
    try:
        code = process.wait(options.duration + 120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    process.stdout.close()
    process.stderr.close()
    if code != 0 or "start" not in marks or "stop" not in marks:
        raise RuntimeError(f"driver failed ({code}): {' '.join(problems)}")
    result: dict[str, Any] = json.loads(output)
    cpu = marks["stop"][0] - marks["start"][0]
    wall = marks["stop"][1] - marks["start"][1]
    return result, cpu, wall, load_rss


def kib_per_connection(idle_kib: int, load_kib: int, connections: int) -> float | None:
    """
    The memory a server holds per open connection: its RSS under load less
    its idle RSS, over the connections open; C{None} without both readings
    or connections.
    """
    if idle_kib <= 0 or load_kib <= 0 or connections <= 0:
        return None
    return (load_kib - idle_kib) / connections


def one_run(
    name: str, template: str, scenario_name: str, driver: Path, options: argparse.Namespace
) -> dict[str, Any]:
    """
    Start C{name} fresh, load it with one scenario, stop it.
    """
    scenario = SCENARIOS[scenario_name]
    host = options.host
    port = free_port(host)
    cpu = None if options.no_pin else options.server_cpu
    server = Server(name, template, host, port, cpu, options.build)
    record: dict[str, Any] = {
        "server": name,
        "scenario": scenario_name,
        "port": port,
        "command": server.command,
    }
    try:
        server.wait_ready(udp=scenario.kind == "udp")
        idle_rss = server.proc_status().get("VmRSS", 0)
        result, server_cpu, wall, load_rss = run_driver(driver, server, scenario, options)
        status = server.proc_status()
        alive = server.process.poll() is None
        held = result.get("established", 0) if scenario.kind in HOLDING else 0
        record.update(
            result=result,
            msgs_per_s=result["msgs_per_s"],
            p50_us=result["latency_us"]["p50"],
            p99_us=result["latency_us"]["p99"],
            errors=result["errors"] + (0 if alive else 1),
            server_alive=alive,
            rss_kib=status.get("VmRSS", 0),
            peak_rss_kib=status.get("VmHWM", 0),
            idle_rss_kib=idle_rss,
            load_rss_kib=load_rss,
            kib_per_conn=kib_per_connection(idle_rss, load_rss, held),
            server_cpu=server_cpu / wall if wall > 0 else 0.0,
            driver_cpu=result["cpu_s"] / result["duration_s"],
            msgs_per_cpu_s=result["messages"] / server_cpu if server_cpu > 0 else 0.0,
            load_average=os.getloadavg()[0],
        )
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
        record.update(
            error=str(error),
            msgs_per_s=0.0,
            p50_us=0.0,
            p99_us=0.0,
            errors=1,
            rss_kib=0,
            peak_rss_kib=0,
            idle_rss_kib=0,
            load_rss_kib=0,
            kib_per_conn=None,
            server_cpu=0.0,
            driver_cpu=0.0,
            msgs_per_cpu_s=0.0,
        )
    finally:
        server.stop()
    return record


def summarise(
    runs: list[dict[str, Any]], servers: list[str], scenarios: list[str], baseline: str
) -> dict[str, dict[str, dict[str, float]]]:
    """
    The median of every figure per (scenario, server), and the ratio of its
    messages per second (and per CPU-second) to the baseline's; where runs
    measured it, the median memory per connection (C{kib_per_conn}) and its
    ratio to the baseline's (C{kib_ratio}, C{nan} if the baseline has none).
    """
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for scenario in scenarios:
        rows: dict[str, dict[str, float]] = {}
        for server in servers:
            mine = [r for r in runs if r["server"] == server and r["scenario"] == scenario]
            if not mine:
                continue
            rows[server] = {
                key: float(statistics.median(r[key] for r in mine))
                for key in (
                    "msgs_per_s",
                    "p50_us",
                    "p99_us",
                    "peak_rss_kib",
                    "rss_kib",
                    "server_cpu",
                    "driver_cpu",
                    "msgs_per_cpu_s",
                )
            }
            for key in ("idle_rss_kib", "load_rss_kib"):
                rows[server][key] = float(statistics.median(r.get(key, 0) for r in mine))
            held = [r["kib_per_conn"] for r in mine if r.get("kib_per_conn") is not None]
            if held:
                rows[server]["kib_per_conn"] = float(statistics.median(held))
            rows[server]["errors"] = float(sum(r["errors"] for r in mine))
            rows[server]["rounds"] = float(len(mine))
        base = rows.get(baseline, {}).get("msgs_per_s", 0.0)
        base_cpu = rows.get(baseline, {}).get("msgs_per_cpu_s", 0.0)
        base_kib = rows.get(baseline, {}).get("kib_per_conn", 0.0)
        for row in rows.values():
            row["ratio"] = row["msgs_per_s"] / base if base else NAN
            row["cpu_ratio"] = row["msgs_per_cpu_s"] / base_cpu if base_cpu else NAN
            if "kib_per_conn" in row:
                row["kib_ratio"] = row["kib_per_conn"] / base_kib if base_kib > 0 else NAN
        summary[scenario] = rows
    return summary


# Reporting -----------------------------------------------------------------


def format_table(
    summary: dict[str, dict[str, dict[str, float]]],
    baseline: str,
    previous: dict[str, Any] | None = None,
) -> str:
    """
    The summary as a plain-text table (one block per scenario), then the
    ratio matrices: messages/s, messages per CPU-second, and KiB per
    connection where the scenario holds connections.
    """
    lines = []
    base = f"x {baseline}"
    header = (
        f"{'scenario':<15} {'server':<11} {'msgs/s':>10} {base:>9} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>7} {'idle MB':>7} {'KiB/conn':>8} {base:>9} "
        f"{'errors':>6} {'srv CPU':>7} {'drv CPU':>7} {'msgs/CPU-s':>10} {base:>9}"
    )
    if previous:
        header += f" {'vs prev':>8}"
    lines.append(header)
    lines.append("-" * len(header))
    contended = False
    for scenario, rows in summary.items():
        for server, row in rows.items():
            mark = " "
            if row["server_cpu"] < SATURATED and row["driver_cpu"] < SATURATED:
                mark, contended = "~", True
            line = (
                f"{scenario:<15} {server:<10}{mark} {row['msgs_per_s']:>10,.0f} "
                f"{row['ratio']:>9.2f} {row['p50_us'] / 1000:>8.2f} "
                f"{row['p99_us'] / 1000:>8.2f} {row['peak_rss_kib'] / 1024:>7.1f} "
                f"{row.get('idle_rss_kib', 0.0) / 1024:>7.1f} "
                f"{_cell(row.get('kib_per_conn', NAN), 8)} {_cell(row.get('kib_ratio', NAN), 9)} "
                f"{row['errors']:>6.0f} {row['server_cpu']:>7.0%} {row['driver_cpu']:>7.0%} "
                f"{row['msgs_per_cpu_s']:>10,.0f} {row['cpu_ratio']:>9.2f}"
            )
            if previous:
                old = previous.get(scenario, {}).get(server, {}).get("msgs_per_s")
                line += f" {row['msgs_per_s'] / old - 1:>+8.0%}" if old else f" {'-':>8}"
            lines.append(line)
        lines.append("")
    if contended:
        lines.append(
            f"~ neither the server nor the driver used {SATURATED:.0%} of its CPU: "
            "other load took the CPUs, or the run waited on something; its msgs/s "
            "says little, msgs/CPU-s (messages per second of server CPU) still holds."
        )
        lines.append("")
    servers = list(dict.fromkeys(s for rows in summary.values() for s in rows))
    widths = {s: max(10, len(s) + 1) for s in servers}
    for key, title in (
        ("ratio", "messages/s"),
        ("cpu_ratio", "messages per server CPU-second"),
        ("kib_ratio", "KiB per connection ((RSS under load - idle RSS) / connections)"),
    ):
        blocks = {
            scenario: rows
            for scenario, rows in summary.items()
            if key != "kib_ratio" or any(key in row for row in rows.values())
        }
        if not blocks:
            continue
        lines.append(f"{title} relative to {baseline} (median of rounds):")
        lines.append(f"{'':<15}" + "".join(f"{s:>{widths[s]}}" for s in servers))
        for scenario, rows in blocks.items():
            cells = "".join(
                _cell(rows[s].get(key, NAN), widths[s]) if s in rows else f"{'-':>{widths[s]}}"
                for s in servers
            )
            lines.append(f"{scenario:<15}{cells}")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def _cell(value: float, width: int) -> str:
    """
    C{value} to two decimals in C{width} columns, or C{-} where it is C{nan}.
    """
    return f"{'-':>{width}}" if value != value else f"{value:>{width}.2f}"


def draw_chart(
    summary: dict[str, dict[str, dict[str, float]]], baseline: str, path: Path, title: str
) -> None:
    """
    Two panels of grouped bars, one group per scenario: each server's
    messages/s, and its messages per server CPU-second, relative to the
    baseline (log scale), labelled with the ratio.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(summary)
    servers = list(dict.fromkeys(s for rows in summary.values() for s in rows))
    width = 0.8 / max(len(servers), 1)
    figure, panels = plt.subplots(2, 1, figsize=(11, 8.5), dpi=100, sharex=True)
    for axes, key, label in (
        (panels[0], "ratio", f"messages/s\nrelative to {baseline}"),
        (panels[1], "cpu_ratio", f"messages per server CPU-second\nrelative to {baseline}"),
    ):
        for index, server in enumerate(servers):
            xs = [i + (index - (len(servers) - 1) / 2) * width for i in range(len(scenarios))]
            ratios = [summary[s].get(server, {}).get(key, 0.0) or 0.0 for s in scenarios]
            bars = axes.bar(xs, [max(r, 1e-3) for r in ratios], width, label=server)
            for bar, ratio in zip(bars, ratios, strict=True):
                axes.annotate(
                    f"{ratio:.2f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        axes.set_yscale("log")
        axes.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        axes.set_ylabel(label + " (log)")
    panels[0].set_title(title, fontsize=9)
    panels[1].set_xticks(range(len(scenarios)))
    panels[1].set_xticklabels(scenarios)
    panels[1].legend(ncol=len(servers), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def machine() -> dict[str, Any]:
    """
    What the figures were measured on.
    """
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for module in ("twisted", "uvloop", "twisted_net"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:
            versions[module] = None
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "load_average": os.getloadavg(),
    }


# Command line ----------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark 'twist net' against peer servers of the same protocol.\n\n"
        "Builds the C load driver and C server into benchmarks/build, runs every server\n"
        "fresh for each scenario (pinned to one CPU) under the driver (pinned to the\n"
        "other), and prints the median messages/s, latency, memory and CPU of each, with\n"
        "its ratio to the baseline; every run goes to benchmarks/results/*.json, the\n"
        "ratios to benchmarks/chart.png.",
        epilog="examples:\n"
        "  python benchmarks/run.py                       # everything, 3 rounds of 3 s\n"
        "  python benchmarks/run.py --servers twisted,uvloop --scenarios lockstep-50\n"
        "  python benchmarks/run.py --ours 'twist --reactor asyncio net {net_args}'\n"
        "  python benchmarks/run.py --compare benchmarks/results/latest.json\n"
        "\n"
        "Server commands are templates: {host}, {port}, {python} (this interpreter), {bin} "
        "(its\nscripts directory), {peers}, {build} and, for twist net, {net_args} (listen "
        "addresses\nand limits switched off).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated servers to run (default: %(default)s)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated scenarios (default: %(default)s)",
    )
    parser.add_argument(
        "--ours",
        metavar="TEMPLATE",
        help=f"command template for 'twisted' (default: {SERVERS['twisted']!r})",
    )
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME=TEMPLATE",
        help="add (or replace) a server, e.g. "
        "'twisted-asyncio={bin}/twist --reactor asyncio net {net_args}'; "
        "it is added to --servers",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default: %(default)s)")
    parser.add_argument(
        "--duration", type=float, default=3.0, help="seconds of load per run (default: %(default)s)"
    )
    parser.add_argument(
        "--baseline",
        default="uvloop",
        help="server the ratios are relative to (default: %(default)s)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to use (default: %(default)s)"
    )
    parser.add_argument("--message", default="bench", help="the name sent (default: bench)")
    parser.add_argument("--server-cpu", default="0", help="CPU for servers (default: 0)")
    parser.add_argument("--driver-cpu", default="1", help="CPU for the driver (default: 1)")
    parser.add_argument(
        "--driver-threads",
        type=int,
        default=1,
        metavar="N",
        help="threads of the C driver, each with its share of the "
        "connections (default: %(default)s)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to a CPU")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="directory for the JSON results (default: benchmarks/results)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        default=CHART,
        help="where to draw the chart (default: benchmarks/chart.png)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument(
        "--build",
        type=Path,
        default=BUILD,
        help="directory for the C binaries and server logs (default: benchmarks/build)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="JSON",
        help="an earlier result file: show the change in messages/s",
    )
    options = parser.parse_args(argv)
    options.templates = dict(SERVERS)
    if options.ours:
        options.templates["twisted"] = options.ours
    names = [s for s in options.servers.split(",") if s]
    for spec in options.server:
        name, sep, template = spec.partition("=")
        if not sep or not name or not template:
            parser.error(f"--server wants NAME=TEMPLATE, not {spec!r}")
        options.templates[name] = template
        if name not in names:
            names.append(name)
    unknown = [n for n in names if n not in options.templates]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)}")
    options.server_names = names
    options.scenario_names = [s for s in options.scenarios.split(",") if s]
    unknown = [s for s in options.scenario_names if s not in SCENARIOS]
    if unknown:
        parser.error(
            f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    if options.rounds < 1 or options.duration <= 0:
        parser.error("--rounds and --duration must be positive")
    if options.driver_cpu == "none":
        options.driver_cpu = None
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if "uvloop" in options.server_names:
        try:
            __import__("uvloop")
        except ImportError:
            print("uvloop is not installed (pip install '.[bench]'); skipping it", file=sys.stderr)
            options.server_names.remove("uvloop")
    if not options.no_chart:
        try:
            __import__("matplotlib")
        except ImportError:
            print("matplotlib is not installed (pip install '.[bench]'): no chart", file=sys.stderr)
            options.no_chart = True
    raise_nofile()
    binaries = build(options.build)
    runs: list[dict[str, Any]] = []
    servers = options.server_names
    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    total = options.rounds * len(options.scenario_names) * len(servers)
    for round_number in range(options.rounds):
        shift = round_number % len(servers)
        order = servers[shift:] + servers[:shift]
        for scenario in options.scenario_names:
            for name in order:
                record = one_run(
                    name, options.templates[name], scenario, binaries["driver"], options
                )
                record["round"] = round_number
                runs.append(record)
                note = record.get("error") or (
                    f"{record['msgs_per_s']:>10,.0f} msgs/s  p99 {record['p99_us'] / 1000:.2f} ms"
                    f"  errors {record['errors']}"
                )
                print(
                    f"[{len(runs)}/{total}] round {round_number + 1} {scenario:<15} "
                    f"{name:<10} {note}",
                    file=sys.stderr,
                    flush=True,
                )
    summary = summarise(runs, servers, options.scenario_names, options.baseline)
    previous = None
    if options.compare:
        previous = json.loads(options.compare.read_text())["summary"]
    print(format_table(summary, options.baseline, previous))
    meta = machine()
    meta.update(
        started=started,
        argv=sys.argv[1:],
        rounds=options.rounds,
        duration=options.duration,
        baseline=options.baseline,
        templates={n: options.templates[n] for n in servers},
        pinned={
            "server": None if options.no_pin else options.server_cpu,
            "driver": options.driver_cpu,
        },
    )
    options.results.mkdir(parents=True, exist_ok=True)
    path = options.results / f"bench-{started}.json"
    document = {"meta": meta, "summary": summary, "runs": runs}
    path.write_text(json.dumps(document, indent=1) + "\n")
    (options.results / "latest.json").write_text(path.read_text())
    print(f"\nresults: {path}", file=sys.stderr)
    if not options.no_chart:
        title = (
            f"{len(servers)} servers, {options.rounds} rounds x {options.duration:g} s, "
            f"server on CPU {options.server_cpu}, driver on CPU {options.driver_cpu} "
            f"({meta['cpu']}, {meta['cpus']} CPUs)"
        )
        draw_chart(summary, options.baseline, options.chart, title)
        print(f"chart: {options.chart}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
