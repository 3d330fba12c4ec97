"""
C{twist --log-format json net}: one JSON object per line, and every event of
the server's own carries a stable C{event} name and the fields the README's
table promises (C{peer} as C{HOST:PORT}, C{reason} for refusals), checked
against the installed program with real traffic.
"""

from __future__ import annotations

import json
import re
import socket
import time

LOOPBACK = "127.0.0.1"

FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "starting": {"reactor": str},
    "listening": {"transport": str, "address": str},
    "metrics_listening": {"transport": str, "endpoint": str, "address": str},
    "connection_opened": {"peer": str},
    "connection_closed": {"peer": str},
    "message": {"peer": str, "message": str},
    "datagram": {"peer": str, "message": str},
    "refused": {"peer": str, "reason": str, "suppressed": int},
    "draining": {"count": int},
    "stopped": {"counters": dict},
}
"""The documented events and the fields (and JSON types) each one has."""

HOST_PORT = re.compile(r"^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:.%\w]+\]):\d+$")


def test_json_events_have_stable_fields(twist_net) -> None:
    """
    A TCP session, a datagram, a refusal and a stop with a connection still
    open produce the documented events, each with its fields; every line of
    standard output is one JSON object.
    """
    server = twist_net(
        [
            "--listen",
            f"tcp:0:interface={LOOPBACK}",
            "--udp",
            f"{LOOPBACK}:0",
            "--metrics",
            f"tcp:0:interface={LOOPBACK}",
            "--log-messages",
            "--max-message",
            "8",
        ]
    )
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as client:
        tcp_peer = "{}:{}".format(*client.getsockname())
        assert client.recv(1024) == b"Welcome!"
        client.send(b"Mi\xffke")
        assert client.recv(1024) == b"Hello, Mi\xffke!"
        client.send(b"much too long")
        assert client.recv(1024).startswith(b"error:")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.bind((LOOPBACK, 0))
        udp.sendto(b"Tracy", (LOOPBACK, server.udp_port))
        assert udp.recv(1024) == b"Hello, Tracy!"
        udp_peer = "{}:{}".format(*udp.getsockname())
    server.wait_for(lambda e: e.get("event") == "connection_closed")
    lingering = socket.create_connection((LOOPBACK, server.tcp_port), timeout=5)
    assert lingering.recv(1024) == b"Welcome!"
    server.wait_for(lambda e: e.get("event") == "connection_opened" and e["peer"] != tcp_peer)
    assert server.stop() in (0, -15)
    lingering.close()

    lines = [line.strip("\x1e") for line in server.raw_lines if line.strip("\x1e")]
    assert lines and len(lines) == len(server.events)
    for line in lines:
        assert isinstance(json.loads(line), dict)

    ours = [e for e in server.events if e.get("log_namespace", "").startswith("twisted_net")]
    assert ours
    for event in ours:
        assert event.get("event") in FIELDS, event
        for field, kind in FIELDS[event["event"]].items():
            assert isinstance(event.get(field), kind), (field, event)
        if "peer" in event:
            assert HOST_PORT.match(event["peer"]), event["peer"]

    def named(name: str) -> list[dict]:
        return [e for e in ours if e["event"] == name]

    assert {e["peer"] for e in named("connection_opened")} >= {tcp_peer}
    assert {e["peer"] for e in named("connection_closed")} >= {tcp_peer}
    messages = named("message")
    assert [m["message"] for m in messages] == ["Mi\xffke", "much too long"]
    assert messages[0]["message"].encode("latin-1") == b"Mi\xffke"
    assert [(d["peer"], d["message"]) for d in named("datagram")] == [(udp_peer, "Tracy")]
    refused = named("refused")
    assert [(r["peer"], r["reason"]) for r in refused] == [(tcp_peer, "max-message")]
    assert [e["count"] for e in named("draining")] == [1]
    counters = named("stopped")[0]["counters"]
    assert counters["connections_total"] == 2
    assert counters["refusals"] == {"max-message": 1}
    assert sorted(e["transport"] for e in named("listening")) == ["tcp", "udp"]
    assert [e["transport"] for e in named("metrics_listening")] == ["http"]
    kinds = [e["event"] for e in ours]
    assert kinds.index("starting") < kinds.index("listening") < kinds.index("connection_opened")
    assert kinds[-1] == "stopped"


def test_messages_not_logged_by_default(twist_net) -> None:
    """
    Without C{--log-messages} no message content reaches the log.
    """
    server = twist_net(["--listen", f"tcp:0:interface={LOOPBACK}", "--no-udp"])
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as client:
        assert client.recv(1024) == b"Welcome!"
        client.send(b"Secret")
        assert client.recv(1024) == b"Hello, Secret!"
    server.wait_for(lambda e: e.get("event") == "connection_closed")
    time.sleep(0.1)
    assert server.stop() in (0, -15)
    assert not [e for e in server.events if e.get("event") in ("message", "datagram")]
    assert not [line for line in server.raw_lines if "Secret" in line]
