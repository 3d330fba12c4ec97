"""
Tests for L{twisted_net.server.refusals}: the one registry of refusal
reasons, and the rate-limited log that counts them.
"""

from __future__ import annotations

import ast
import errno
from pathlib import Path

from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from twisted_net.server import refusals
from twisted_net.server.counters import Counters
from twisted_net.server.metrics import KNOWN_REFUSALS
from twisted_net.server.refusals import REFUSALS, RefusalLog, udp_send_refusal

SERVER = Path(refusals.__file__).parent


def test_the_reasons_are_the_stable_names() -> None:
    """
    The reasons are log fields and metric labels: their names stay as they
    were when each module spelled its own.
    """
    assert set(REFUSALS) == {
        "max-connections",
        "max-per-peer",
        "max-message",
        "idle-timeout",
        "message-timeout",
        "write-timeout",
        "shutdown-timeout",
        "udp-source-port",
        "udp-source-address",
        "udp-loop",
        "udp-rate",
        "proxy-header",
        "proxy-timeout",
        "tls-handshake",
        "tls-timeout",
        "accept-emfile",
        "accept-enomem",
        "accept-error",
    }


def test_every_reason_has_a_constant_and_a_one_line_description() -> None:
    """
    Each reason is a constant of the module, and says what it refuses in
    one line.
    """
    constants = {
        name: value
        for name in refusals.__all__
        if name.isupper() and isinstance(value := getattr(refusals, name), str)
    }
    assert set(constants.values()) == set(REFUSALS)
    for reason in REFUSALS.values():
        assert reason and "\n" not in reason


def test_metrics_export_every_reason_of_the_registry() -> None:
    """
    The metrics read their reasons from the registry, in its order.
    """
    assert tuple(REFUSALS) == KNOWN_REFUSALS


def test_no_server_module_spells_a_reason_itself() -> None:
    """
    Outside the registry, no module of the server writes a reason as a
    string literal: each names the registry's constant.
    """
    for path in sorted(SERVER.rglob("*.py")):
        if path.name == "refusals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in REFUSALS, f"{path.name}:{node.lineno}: {node.value!r}"


def test_udp_send_refusal_is_named_after_the_errno() -> None:
    assert udp_send_refusal(OSError(errno.ECONNREFUSED, "refused")) == "udp-send-econnrefused"
    assert udp_send_refusal(OSError("no errno")) == "udp-send-error"


def test_refusals_are_counted_and_logged_at_a_bounded_rate() -> None:
    """
    Every refusal is counted; each reason is logged at most once per
    interval, the next line saying how many were not logged.
    """
    counters = Counters()
    clock = Clock()
    log = RefusalLog(counters, clock, interval=10.0)
    with capturedLogs() as events:
        for _ in range(3):
            log.refuse(refusals.UDP_RATE, "10.0.0.1:5")
        log.refuse(refusals.UDP_LOOP, "10.0.0.2:5")
        clock.advance(10.0)
        log.refuse(refusals.UDP_RATE, "10.0.0.1:5")
    assert counters.refusals == {"udp-rate": 4, "udp-loop": 1}
    logged = [(e["reason"], e["suppressed"]) for e in events if e.get("event") == "refused"]
    assert logged == [("udp-rate", 0), ("udp-loop", 0), ("udp-rate", 2)]
