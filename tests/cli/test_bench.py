"""
Tests for the benchmark harness: the peer servers speak the protocol, the C
driver and C server build and give sane results, C{benchmarks/run.py} and
C{twisted-net bench} produce their tables and JSON.  Never speed assertions:
only that the figures are consistent and the protocol is right.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import RunningServer, installed_script

from twisted_net.cli import bench
from twisted_net.cli.bench import process
from twisted_net.cli.bench.load import LoadRun

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
PEERS = BENCHMARKS / "peers"
CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc)")


def _load_run_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_run", BENCHMARKS / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks_run"] = module
    spec.loader.exec_module(module)
    return module


run_module = _load_run_module()


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """
    The C driver and C server, compiled into a private directory.
    """
    if CC is None:
        pytest.skip("no C compiler (cc)")
    built: dict[str, Path] = run_module.build(tmp_path_factory.mktemp("build"), verbose=False)
    return built


class Peer:
    """
    A peer server subprocess started on port 0.
    """

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise AssertionError(f"peer did not start: {line!r} {self.process.stderr}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def peer() -> Iterator[Callable[[list[str]], Peer]]:
    started: list[Peer] = []

    def start(command: list[str]) -> Peer:
        started.append(Peer(command))
        return started[-1]

    yield start
    for one in started:
        one.stop()


def _peer_commands() -> list[Any]:
    commands = [
        pytest.param([sys.executable, str(PEERS / "threaded.py")], id="threaded"),
        pytest.param([sys.executable, str(PEERS / "asyncio_server.py")], id="asyncio"),
        pytest.param(
            [sys.executable, str(PEERS / "asyncio_server.py"), "--uvloop"],
            id="uvloop",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("uvloop") is None, reason="no uvloop"
            ),
        ),
        pytest.param(["epoll_server"], id="epoll-c", marks=needs_cc),
    ]
    return commands


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("command", _peer_commands())
def test_peer_speaks_the_protocol(
    command: list[str], peer: Callable[[list[str]], Peer], request: pytest.FixtureRequest
) -> None:
    """
    Every peer greets, answers a read with C{Hello, M!}, answers each line of
    a read with its own ending, closes on C{exit}, and answers UDP.
    """
    if command == ["epoll_server"]:
        command = [str(request.getfixturevalue("binaries")["epoll_server"])]
    server = peer([*command, "--host", "127.0.0.1", "--port", "0"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as tcp:
        assert _read_exactly(tcp, 8) == b"Welcome!"
        tcp.sendall(b"Michael")
        assert _read_exactly(tcp, 15) == b"Hello, Michael!"
        tcp.sendall(b"a\nb\r\n")
        assert _read_exactly(tcp, 21) == b"Hello, a!\nHello, b!\r\n"
        tcp.sendall(b"exit")
        assert tcp.recv(100) == b""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(b"Bob\n", ("127.0.0.1", server.port))
        assert udp.recvfrom(100)[0] == b"Hello, Bob!\n"


def _drive(driver: Path, port: int, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(driver), "--port", str(port), *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("scenario", ["lockstep", "pipeline", "churn", "udp"])
def test_c_driver_measures_the_c_server(
    scenario: str, binaries: dict[str, Path], peer: Callable[[list[str]], Peer]
) -> None:
    """
    A short run of each scenario against the C server answers messages
    without errors, and its figures agree with each other.
    """
    server = peer([str(binaries["epoll_server"]), "--port", "0"])
    result = _drive(
        binaries["driver"],
        server.port,
        "--scenario",
        scenario,
        "--connections",
        "4",
        "--duration",
        "0.3",
    )
    assert result["scenario"] == scenario
    assert result["established"] == 4
    assert result["errors"] == 0, result["error_detail"]
    assert result["messages"] > 0
    assert result["msgs_per_s"] == pytest.approx(
        result["messages"] / result["duration_s"], rel=0.01
    )
    latency = result["latency_us"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] * 1.02
    assert result["unit"] == ("sessions" if scenario == "churn" else "messages")


def test_c_driver_stops_at_count(
    binaries: dict[str, Path], peer: Callable[[list[str]], Peer]
) -> None:
    """
    C{--count} bounds the run: exactly that many replies are counted.
    """
    server = peer([str(binaries["epoll_server"]), "--port", "0"])
    result = _drive(binaries["driver"], server.port, "--count", "100", "--duration", "20")
    assert result["messages"] == 100
    assert result["duration_s"] < 20


def test_c_driver_counts_a_wrong_reply_as_an_error(binaries: dict[str, Path]) -> None:
    """
    A server that answers something else is reported as protocol errors,
    with nothing counted as answered.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        wrong = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import socket,sys\n"
                "s=socket.socket(fileno=int(sys.argv[1]))\n"
                "c,_=s.accept()\n"
                "c.sendall(b'Welcome!')\n"
                "c.recv(100)\n"
                "c.sendall(b'Goodbye, bench!')\n"
                "c.recv(100)\n",
                str(listener.fileno()),
            ],
            pass_fds=[listener.fileno()],
        )
        try:
            result = _drive(binaries["driver"], port, "--connections", "1", "--duration", "0.5")
        finally:
            wrong.kill()
            wrong.wait(10)
    assert result["messages"] == 0
    assert result["error_detail"]["protocol"] == 1


def test_c_driver_refuses_other_hosts(binaries: dict[str, Path]) -> None:
    """
    The driver is for loopback only.
    """
    done = subprocess.run(
        [str(binaries["driver"]), "--host", "192.0.2.1", "--port", "9"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 2
    assert "loopback" in done.stderr


def _fake_run(server: str, scenario: str, rate: float, rnd: int) -> dict[str, Any]:
    return {
        "server": server,
        "scenario": scenario,
        "round": rnd,
        "msgs_per_s": rate,
        "p50_us": 100.0 * rnd,
        "p99_us": 900.0,
        "peak_rss_kib": 2048,
        "rss_kib": 1024,
        "msgs_per_cpu_s": rate * 2,
        "server_cpu": 1.0,
        "driver_cpu": 0.5,
        "errors": rnd,
    }


def test_summary_takes_medians_and_ratios() -> None:
    """
    The summary of several rounds is the median per (scenario, server), the
    errors are added up, and the ratio is relative to the baseline's median.
    """
    runs = [_fake_run("a", "s", rate, rnd) for rnd, rate in enumerate([10.0, 30.0, 20.0])]
    runs += [_fake_run("b", "s", rate, rnd) for rnd, rate in enumerate([5.0, 5.0, 50.0])]
    summary = run_module.summarise(runs, ["a", "b"], ["s"], baseline="b")
    assert summary["s"]["a"]["msgs_per_s"] == 20.0
    assert summary["s"]["a"]["p50_us"] == 100.0
    assert summary["s"]["a"]["errors"] == 3.0
    assert summary["s"]["a"]["ratio"] == 4.0
    assert summary["s"]["b"]["ratio"] == 1.0
    assert summary["s"]["a"]["cpu_ratio"] == 4.0
    table = run_module.format_table(summary, "b")
    assert "x b" in table.splitlines()[0]
    assert any(line.split()[:2] == ["s", "a"] and "4.00" in line for line in table.splitlines())


def test_memory_per_connection_is_the_growth_over_the_connections() -> None:
    """
    The memory per connection is the RSS gained from idle to loaded, shared
    out over the connections held; without a reading or a connection there
    is no figure (not a division by zero, nor a whole RSS taken as growth).
    """
    idle, loaded, connections = 30_000, 41_000, 10_000
    per_connection = run_module.kib_per_connection(idle, loaded, connections)
    assert per_connection is not None
    assert per_connection * connections == pytest.approx(loaded - idle)
    assert run_module.kib_per_connection(idle, loaded, 1) > per_connection
    assert run_module.kib_per_connection(idle, loaded, 0) is None
    assert run_module.kib_per_connection(0, loaded, connections) is None
    assert run_module.kib_per_connection(idle, 0, connections) is None


def test_summary_and_table_show_memory_per_connection() -> None:
    """
    The summary takes the median KiB per connection of the rounds that
    measured it and its ratio to the baseline's; the table prints it in its
    own column and matrix, and a dash where a scenario holds no connections.
    """
    runs = []
    for rnd, (mine, theirs) in enumerate([(1.0, 2.0), (3.0, 2.0), (2.0, 8.0)]):
        for server, kib in (("a", mine), ("b", theirs)):
            record = _fake_run(server, "held", 10.0, rnd)
            record.update(idle_rss_kib=1000 + rnd, load_rss_kib=2000, kib_per_conn=kib)
            runs.append(record)
            record = _fake_run(server, "udp", 10.0, rnd)
            record.update(idle_rss_kib=1000, load_rss_kib=1000, kib_per_conn=None)
            runs.append(record)
    summary = run_module.summarise(runs, ["a", "b"], ["held", "udp"], baseline="b")
    held = summary["held"]
    assert held["a"]["kib_per_conn"] == statistics.median([1.0, 3.0, 2.0])
    assert held["a"]["idle_rss_kib"] == statistics.median([1000, 1001, 1002])
    assert held["a"]["load_rss_kib"] == 2000
    assert held["a"]["kib_ratio"] == held["a"]["kib_per_conn"] / held["b"]["kib_per_conn"]
    assert held["b"]["kib_ratio"] == 1.0
    assert "kib_per_conn" not in summary["udp"]["a"]
    table = run_module.format_table(summary, "b").splitlines()
    end = table[0].index("KiB/conn") + len("KiB/conn")  # the column is right-aligned
    cells = {tuple(line.split()[:2]): line[:end].split()[-1] for line in table[2:] if line}
    assert float(cells["held", "a"]) == held["a"]["kib_per_conn"]
    assert cells["udp", "a"] == "-"
    matrix = table.index(next(line for line in table if line.startswith("KiB per connection")))
    assert table[matrix + 2].split() == [
        "held",
        f"{held['a']['kib_ratio']:.2f}",
        f"{held['b']['kib_ratio']:.2f}",
    ]
    assert not any(line.startswith("udp") for line in table[matrix:])


@needs_cc
def test_run_script_writes_table_json_and_chart(tmp_path: Path) -> None:
    """
    C{benchmarks/run.py} on two peers and one short scenario prints the
    table, writes the JSON results and draws the chart (without matplotlib, it
    says so in one line).
    """
    drawing = importlib.util.find_spec("matplotlib") is not None  # the bench extra
    chart = tmp_path / "chart.png"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--servers",
            "epoll-c,asyncio",
            "--baseline",
            "asyncio",
            "--scenarios",
            "lockstep-50",
            "--rounds",
            "1",
            "--duration",
            "1",
            "--results",
            str(tmp_path),
            "--chart",
            str(chart),
            "--build",
            str(tmp_path / "build"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "x asyncio" in done.stdout
    assert "lockstep-50" in done.stdout
    document = json.loads((tmp_path / "latest.json").read_text())
    assert {r["server"] for r in document["runs"]} == {"epoll-c", "asyncio"}
    for record in document["runs"]:
        assert record["msgs_per_s"] > 0 and record["errors"] == 0
        assert record["msgs_per_cpu_s"] >= 0 and 0 <= record["server_cpu"] <= 1.2
        if record["server"] == "asyncio":
            # The C server may use less than one clock tick on a loaded
            # machine; the Python one cannot.
            assert record["msgs_per_cpu_s"] > 0 and record["server_cpu"] > 0
        # Memory: read idle and under load, and shared out over the
        # connections the driver held open.
        assert record["idle_rss_kib"] > 0 and record["load_rss_kib"] > 0
        held = record["result"]["established"]
        assert held == 50
        assert record["kib_per_conn"] == pytest.approx(
            (record["load_rss_kib"] - record["idle_rss_kib"]) / held
        )
    assert document["summary"]["lockstep-50"]["asyncio"]["ratio"] == 1.0
    if drawing:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # the figures all the same, and one line instead of a traceback
        assert "matplotlib is not installed" in done.stderr and "Traceback" not in done.stderr
        assert not chart.exists()


def test_histogram_percentiles() -> None:
    """
    Percentiles come out of the right buckets, within the bucket error.
    """
    histogram = bench.Histogram()
    for us in range(1, 1001):
        histogram.record(us * 1000)
    histogram.record(50_000_000)
    assert histogram.percentile(0.5) == pytest.approx(501, abs=1)
    assert histogram.percentile(0.99) == pytest.approx(991, abs=1)
    assert histogram.percentile(1.0) == pytest.approx(50_000, rel=0.02)
    assert histogram.summary()["max"] == 50_000.0


class _InterruptedWhileUnregistering:
    """
    An epoll object whose first C{unregister} does its work and then gets
    Ctrl-C, as a user's SIGINT can land between any two lines of a close.
    """

    def __init__(self, poller: Any) -> None:
        self.poller = poller
        self.interrupted = False

    def unregister(self, fd: int) -> None:
        self.poller.unregister(fd)
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.poller, name)


def test_ctrl_c_while_closing_a_connection_still_reports() -> None:
    """
    Ctrl-C that lands inside the close of a churn connection ends the run
    with what was measured, and closes every socket: no "No such file or
    directory" from unregistering the same socket twice.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def hang_up() -> None:  # every client is accepted, then closed: a close for it
        with contextlib.suppress(OSError):
            while True:
                listener.accept()[0].close()

    server = threading.Thread(target=hang_up, daemon=True)
    server.start()
    try:
        load = LoadRun("127.0.0.1", listener.getsockname()[1], "churn", 2, 10.0)
        poller = _InterruptedWhileUnregistering(load.poller)
        load.poller = poller  # type: ignore[assignment]
        result = load.run()
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        server.join(5)
    assert poller.interrupted
    assert result["interrupted"] is True
    assert result["error_detail"]["closed"] + result["error_detail"]["reset"] >= 1
    assert load.conns == {}


def test_bench_rejects_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    """
    A scenario that does not exist is one clear error line and status 2.
    """
    assert bench.main(["--scenario", "lockstep,sideways", "--duration", "0.1"]) == 2
    assert "unknown scenario 'sideways'" in capsys.readouterr().err


def test_bench_command_against_twist_net(
    twist_net: Callable[..., RunningServer], tmp_path: Path
) -> None:
    """
    C{twisted-net bench} against the installed server: a table with a row
    per scenario on stdout, progress on stderr, and the same figures in the
    JSON file.
    """
    server = twist_net(
        ["--listen", "tcp:0:interface=127.0.0.1", "--udp", "127.0.0.1:0", "--udp-rate", "0"]
    )
    results = []
    for port, scenarios in ((server.tcp_port, "lockstep,pipeline,churn"), (server.udp_port, "udp")):
        path = tmp_path / f"{port}.json"
        done = subprocess.run(
            [
                installed_script("twisted-net"),
                "bench",
                "--connect",
                f"127.0.0.1:{port}",
                "--scenario",
                scenarios,
                "--duration",
                "1.2",
                "--connections",
                "4",
                "--json",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        rows = [line.split() for line in done.stdout.splitlines()]
        for name in scenarios.split(","):
            assert any(row[:2] == [name, "4"] for row in rows), done.stdout
        assert f"[{scenarios.split(',')[0]}]" in done.stderr
        results += json.loads(path.read_text())["results"]
    assert [r["scenario"] for r in results] == ["lockstep", "pipeline", "churn", "udp"]
    for result in results:
        assert result["messages"] > 0
        assert result["errors"] == 0, result
        assert result["engine"] == "python"
        assert result["latency_us"]["p50"] <= result["latency_us"]["p99"]


def test_bench_without_server_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """
    Against a port nobody listens on, every connection is a connect error,
    the status is 1 and stderr says that no replies came.
    """
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = bound.getsockname()[1]
        status = bench.main(
            ["--connect", f"127.0.0.1:{port}", "--duration", "0.2", "--connections", "3", "--quiet"]
        )
    captured = capsys.readouterr()
    assert status == 1
    assert "no replies" in captured.err and "connect 3" in captured.err
    assert captured.out.splitlines()[2].split()[:3] == ["lockstep", "3", "0"]


def test_bench_with_the_c_driver(
    binaries: dict[str, Path],
    peer: Callable[[list[str]], Peer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """
    C{--driver} runs the compiled C driver and reports its figures the same
    way, marked as such in the JSON.
    """
    server = peer([str(binaries["epoll_server"]), "--port", "0"])
    path = tmp_path / "c.json"
    status = bench.main(
        [
            "--connect",
            f"127.0.0.1:{server.port}",
            "--scenario",
            "pipeline",
            "--duration",
            "1.2",
            "--connections",
            "2",
            "--driver",
            str(binaries["driver"]),
            "--json",
            str(path),
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "[pipeline]" in captured.err
    assert any(line.split()[:2] == ["pipeline", "2"] for line in captured.out.splitlines())
    (result,) = json.loads(path.read_text())["results"]
    assert result["engine"] == "c"
    assert result["messages"] > 0 and result["errors"] == 0


def test_limit_hints_name_the_server_limits() -> None:
    """
    UDP errors and refused connections point at the server's per-host
    limits, with the options that switch them off; a clean run gets none.
    """
    udp = {"scenario": "udp", "errors": 7, "error_detail": {"timeout": 7}}
    (hint,) = bench.limit_hints(udp)
    assert "rate limit" in hint and "--udp-rate 0 --max-per-peer 0" in hint
    refused = {"scenario": "lockstep", "errors": 3, "error_detail": {"connect": 3}}
    (hint,) = bench.limit_hints(refused)
    assert "--max-per-peer" in hint
    assert bench.limit_hints({"scenario": "udp", "errors": 0, "error_detail": {}}) == []


def test_bench_udp_against_default_rate_limit_says_so(
    twist_net: Callable[..., RunningServer],
) -> None:
    """
    Against a server with its default UDP rate limit (200 datagrams/s per
    host), the losses are reported with the likely cause and the fix.
    """
    server = twist_net(["--no-tcp", "--udp", "127.0.0.1:0"])
    done = subprocess.run(
        [
            installed_script("twisted-net"),
            "bench",
            "--connect",
            f"127.0.0.1:{server.udp_port}",
            "--scenario",
            "udp",
            "--duration",
            "1.5",
            "--connections",
            "20",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "twisted-net: note: bench udp: " in done.stderr
    assert "--udp-rate 0 --max-per-peer 0" in done.stderr


def test_bench_help_says_how_to_start_the_server() -> None:
    done = subprocess.run(
        [installed_script("twisted-net"), "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--udp-rate 0 --max-per-peer 0" in text
    assert "--workers" in text


def test_process_stats_add_the_descendants() -> None:
    """
    C{--pid} of a supervisor counts its workers: a child process is in the
    tree, and its memory is added to the parent's.
    """
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(20)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert child.pid in process.process_tree(os.getpid())
        _, alone = process.process_stats(os.getpid(), descendants=False)
        _, child_peak = process.process_stats(child.pid, descendants=False)
        _, together = process.process_stats(os.getpid())
        assert together >= alone + child_peak
    finally:
        child.kill()
        child.wait()


def test_bench_unknown_pid(capsys: pytest.CaptureFixture[str]) -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait()
    status = bench.main(["--pid", str(gone.pid), "--duration", "0.1", "--quiet"])
    assert status == 2
    assert f"--pid: no process {gone.pid}" in capsys.readouterr().err


@pytest.mark.parametrize("scenario", ["lockstep", "udp", "churn"])
def test_ctrl_c_prints_partial_results(
    twist_net: Callable[..., RunningServer], scenario: str, tmp_path: Path
) -> None:
    """
    SIGINT (Ctrl-C) while measuring: no traceback, one line with what was
    measured so far, exit status 130.
    """
    server = twist_net(
        [
            *("--listen", "tcp:0:interface=127.0.0.1", "--udp", "127.0.0.1:0"),
            *("--udp-rate", "0", "--max-per-peer", "0"),
        ]
    )
    port = server.udp_port if scenario == "udp" else server.tcp_port
    command = [installed_script("twisted-net"), "bench", "-c", f"127.0.0.1:{port}"]
    command += ["--scenario", scenario, "--duration", "60", "--connections", "4"]
    command += ["--json", str(tmp_path / "partial.json")]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as bench_process:
        try:
            assert bench_process.stderr is not None
            first = bench_process.stderr.readline()  # the first progress line: measuring
            assert first.startswith(f"[{scenario}]"), first
            bench_process.send_signal(signal.SIGINT)
            stdout, stderr = bench_process.communicate(timeout=20)
        finally:
            if bench_process.poll() is None:
                bench_process.kill()
    assert bench_process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    unit = "sessions" if scenario == "churn" else "messages"
    assert lines[0].startswith(f"interrupted: {scenario} (interrupted): "), lines[0]
    measured = int(lines[0].split(": ")[2].split()[0].replace(",", ""))
    assert measured > 0
    assert f" {unit} in " in lines[0] and "errors" in lines[0]
    document = json.loads((tmp_path / "partial.json").read_text())
    assert document["interrupted"] is True
    assert document["results"][0]["messages"] == measured
