"""
Prometheus metrics: the collector over L{Counters} (in memory) and the
C{--metrics} page of the installed C{twist net}, scraped over HTTP while real
traffic moves the counters.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
import urllib.request

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from twisted_net.server.counters import LATENCY_BOUNDS, Counters
from twisted_net.server.metrics import KNOWN_REFUSALS, metrics_registry
from twisted_net.tap import Options

LOOPBACK = "127.0.0.1"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """
    Every sample of a Prometheus text page, keyed by name and sorted labels.
    """
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(page: dict, name: str, **labels: str) -> float:
    return page[(name, tuple(sorted(labels.items())))]


def test_collector_exports_counters() -> None:
    """
    Every counter of L{Counters} appears under its metric name, refusals by
    reason (known reasons at 0 from the start), and the histogram is
    cumulative with a count and a sum.
    """
    counters = Counters()
    counters.connections_open = 2
    counters.connections_total = 7
    counters.messages_answered = 11
    counters.datagrams_answered = 5
    counters.bytes_in = 100
    counters.bytes_out = 300
    counters.refusals["udp-rate"] += 3
    counters.refusals["something-new"] += 1
    counters.observe_latency(0.003)
    counters.observe_latency(0.2)
    counters.observe_latency(99.0)
    page = samples(generate_latest(metrics_registry(counters)).decode())

    assert value(page, "twisted_net_connections_open") == 2
    assert value(page, "twisted_net_connections_total") == 7
    assert value(page, "twisted_net_messages_answered_total") == 11
    assert value(page, "twisted_net_datagrams_answered_total") == 5
    assert value(page, "twisted_net_received_bytes_total") == 100
    assert value(page, "twisted_net_sent_bytes_total") == 300
    assert value(page, "twisted_net_refusals_total", reason="udp-rate") == 3
    assert value(page, "twisted_net_refusals_total", reason="something-new") == 1
    for reason in KNOWN_REFUSALS:
        assert ("twisted_net_refusals_total", (("reason", reason),)) in page
    bucket = "twisted_net_reply_latency_seconds_bucket"
    assert value(page, bucket, le="0.001") == 0
    assert value(page, bucket, le="0.005") == 1
    assert value(page, bucket, le="0.25") == 2
    assert value(page, bucket, le=str(LATENCY_BOUNDS[-1])) == 2
    assert value(page, bucket, le="+Inf") == 3
    assert value(page, "twisted_net_reply_latency_seconds_count") == 3
    assert value(page, "twisted_net_reply_latency_seconds_sum") == pytest.approx(99.203)


def test_unknown_integer_counters_exported_as_gauges() -> None:
    """
    A counter added to L{Counters} later shows up without a change to the
    exporter.
    """
    counters = Counters()
    counters.accepts_deferred = 4  # type: ignore[attr-defined]
    page = samples(generate_latest(metrics_registry(counters)).decode())
    assert value(page, "twisted_net_accepts_deferred") == 4


def test_metrics_option_validated() -> None:
    """
    A bad C{--metrics} endpoint is a usage error; a good one is kept.
    """
    from twisted.python.usage import UsageError

    options = Options()
    with pytest.raises(UsageError, match="--metrics"):
        options.parseOptions(["--metrics", "nonsense:1"])
    options = Options()
    options.parseOptions(["--metrics", "tcp:0:interface=127.0.0.1"])
    assert options["metrics"] == "tcp:0:interface=127.0.0.1"
    assert Options()["metrics"] is None


def scrape(server) -> dict:
    event = server.wait_for(lambda e: e.get("event") == "metrics_listening")
    with urllib.request.urlopen(f"http://{event['address']}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return samples(response.read().decode())


def test_scrape_moves_with_traffic(twist_net) -> None:
    """
    The installed server with C{--metrics}: a TCP session, UDP datagrams, a
    refused datagram and delayed replies each move their counters by
    exactly what was sent.
    """
    server = twist_net(
        [
            "--listen",
            f"tcp:0:interface={LOOPBACK}",
            "--udp",
            f"{LOOPBACK}:0",
            "--metrics",
            f"tcp:0:interface={LOOPBACK}",
            "--delay",
            "0.05",
        ]
    )
    before = scrape(server)
    assert value(before, "twisted_net_connections_total") == 0
    assert value(before, "twisted_net_reply_latency_seconds_count") == 0

    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as tcp:
        assert tcp.recv(1024) == b"Welcome!"
        for name in [b"Michael", b"Tracy"]:
            tcp.send(name)
            assert tcp.recv(1024) == b"Hello, " + name + b"!"
        during = scrape(server)
        assert value(during, "twisted_net_connections_open") == 1
        tcp.send(b"exit")
        assert tcp.recv(1024) == b""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        for name in [b"Sarah", b"Ann", b"Bob"]:
            udp.sendto(name, (LOOPBACK, server.udp_port))
            assert udp.recv(1024) == b"Hello, " + name + b"!"
        udp.sendto(b"Hello, loop!", (LOOPBACK, server.udp_port))
    server.wait_for(lambda e: e.get("event") == "refused" and e.get("reason") == "udp-loop")
    server.wait_for(lambda e: e.get("event") == "connection_closed")

    after = scrape(server)
    assert value(after, "twisted_net_connections_total") == 1
    assert value(after, "twisted_net_connections_open") == 0
    assert value(after, "twisted_net_messages_answered_total") == 2
    assert value(after, "twisted_net_datagrams_answered_total") == 3
    assert value(after, "twisted_net_refusals_total", reason="udp-loop") == 1
    tcp_in = len(b"Michael" + b"Tracy" + b"exit")
    udp_in = len(b"Sarah" + b"Ann" + b"Bob" + b"Hello, loop!")
    assert value(after, "twisted_net_received_bytes_total") == tcp_in + udp_in
    tcp_out = len(b"Welcome!" + b"Hello, Michael!" + b"Hello, Tracy!")
    udp_out = len(b"Hello, Sarah!" + b"Hello, Ann!" + b"Hello, Bob!")
    assert value(after, "twisted_net_sent_bytes_total") == tcp_out + udp_out
    assert value(after, "twisted_net_reply_latency_seconds_count") == 2
    assert value(after, "twisted_net_reply_latency_seconds_bucket", le="0.01") == 0
    assert value(after, "twisted_net_reply_latency_seconds_bucket", le="10.0") == 2
    assert 0.099 <= value(after, "twisted_net_reply_latency_seconds_sum") < 5
    assert server.stop() in (0, -15)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/net/udp")
def test_kernel_drops_of_a_stopped_server_are_counted(twist_net) -> None:
    """
    Datagrams the kernel drops while the server cannot read (stopped with
    SIGSTOP, its receive buffer full) are not lost from sight: C{/metrics}
    counts them, and with the answered ones they add up to what was sent.
    The kernel's listen-queue overflows are exported too.
    """
    server = twist_net(
        [
            "--no-tcp",
            "--udp",
            f"{LOOPBACK}:0",
            "--udp-rate",
            "0",
            "--metrics",
            f"tcp:0:interface={LOOPBACK}",
        ]
    )
    before = scrape(server)
    assert value(before, "twisted_net_udp_receive_drops_total") == 0
    assert value(before, "twisted_net_listen_overflows_total") >= 0
    sent = 3000  # 3 MB: far more than a default receive buffer holds
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            for _ in range(sent):
                udp.sendto(b"x" * 1000, (LOOPBACK, server.udp_port))
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        deadline = time.monotonic() + 20
        while True:
            after = scrape(server)
            answered = value(after, "twisted_net_datagrams_answered_total")
            dropped = value(after, "twisted_net_udp_receive_drops_total")
            if answered + dropped >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert dropped > 0
    assert answered + dropped == sent
    assert server.stop() in (0, -15)


def test_metrics_port_in_use_is_a_clear_error(twist_net) -> None:
    """
    A metrics port that cannot be bound stops the server with one line, not
    a traceback.
    """
    from support import RunningServer

    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = RunningServer(
            [
                "--listen",
                f"tcp:0:interface={LOOPBACK}",
                "--no-udp",
                "--metrics",
                f"tcp:{port}:interface={LOOPBACK}",
            ]
        )
        code = server.process.wait(20)
        server.stop()
    assert code != 0
    text = "\n".join(server.raw_lines + server.stderr_lines)
    assert "cannot listen" in text
    assert "Traceback" not in text


def test_scrapes_during_traffic_are_monotonic(twist_net) -> None:
    """
    Scraping (in the web thread) while the reactor answers a stream of
    messages never fails and never sees a counter go back.
    """
    import threading

    server = twist_net(
        [
            "--listen",
            f"tcp:0:interface={LOOPBACK}",
            "--no-udp",
            "--framing",
            "line",
            "--metrics",
            f"tcp:0:interface={LOOPBACK}",
        ]
    )
    seen: list[float] = []
    done = threading.Event()

    def scraper() -> None:
        while not done.is_set() and len(seen) < 200:
            seen.append(value(scrape(server), "twisted_net_messages_answered_total"))

    thread = threading.Thread(target=scraper)
    thread.start()
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as client:
        reader = client.makefile("rb")
        assert reader.readline() == b"Welcome!\r\n"
        for _batch in range(50):
            client.sendall(b"".join(b"m%d\n" % n for n in range(40)))
            for n in range(40):
                assert reader.readline() == b"Hello, m%d!\r\n" % n
    done.set()
    thread.join(10)
    final = value(scrape(server), "twisted_net_messages_answered_total")
    assert final == 50 * 40
    assert len(seen) >= 2
    assert seen == sorted(seen) and seen[-1] <= final


def test_other_paths_not_found(twist_net) -> None:
    """
    The metrics site answers C{/} with a pointer and other paths with 404.
    """
    import urllib.error

    server = twist_net(
        [
            "--listen",
            f"tcp:0:interface={LOOPBACK}",
            "--no-udp",
            "--metrics",
            f"tcp:0:interface={LOOPBACK}",
        ]
    )
    address = server.wait_for(lambda e: e.get("event") == "metrics_listening")["address"]
    with urllib.request.urlopen(f"http://{address}/", timeout=5) as response:
        assert b"/metrics" in response.read()
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://{address}/nothing", timeout=5)
    assert error.value.code == 404
    assert not [e for e in server.events if e.get("log_level", {}).get("name") == "error"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs prlimit")
def test_metrics_answer_when_descriptors_run_out(twist_net) -> None:
    """
    Under an C{RLIMIT_NOFILE} of 48 with every descriptor held by clients,
    the greeting port turns newcomers away, but C{/metrics} still answers,
    scrape after scrape, through a reserve descriptor of its own.
    """
    import resource

    server = twist_net(
        [
            "--listen",
            f"tcp:0:interface={LOOPBACK}",
            "--no-udp",
            "--max-per-peer",
            "0",
            "--metrics",
            f"tcp:0:interface={LOOPBACK}",
        ]
    )
    scrape(server)  # the thread pool that serves scrapes is running
    resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE, (48, 48))
    held = []
    try:
        for _ in range(80):
            sock = socket.create_connection((LOOPBACK, server.tcp_port), timeout=5)
            held.append(sock)
        greeted = 0
        for sock in held:
            with contextlib.suppress(OSError):
                greeted += sock.recv(100) == b"Welcome!"
        assert greeted < len(held)  # the descriptors did run out
        for _ in range(3):
            page = scrape(server)
            assert value(page, "twisted_net_refusals_total", reason="accept-emfile") > 0
            assert value(page, "twisted_net_connections_open") == greeted
    finally:
        for sock in held:
            sock.close()
    assert server.stop() in (0, -15)
