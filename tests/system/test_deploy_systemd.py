"""
The systemd units in C{deploy/systemd/}: the service's own C{ExecStart}
command, started by C{systemd-socket-activate} (Debian package C{systemd})
on a free loopback port with the socket unit's C{FileDescriptorName}, serves
a client on the inherited socket; the units pass C{systemd-analyze verify}.
"""

from __future__ import annotations

import configparser
import json
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from support import installed_script

LOOPBACK = "127.0.0.1"
UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
ACTIVATE = shutil.which("systemd-socket-activate")

pytestmark = pytest.mark.skipif(
    ACTIVATE is None, reason="systemd-socket-activate is not installed (Debian package: systemd)"
)


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def exec_start() -> list[str]:
    """
    The service's C{ExecStart}, with the installed C{twist} and with the
    UDP and metrics ports it binds itself moved to free ones.
    """
    words = shlex.split(unit("twisted-net.service")["Service"]["ExecStart"])
    assert words[0].endswith("/bin/twist")
    words[0] = installed_script("twist")
    for option, free in (("--udp", f"{LOOPBACK}:0"), ("--metrics", f"tcp:0:interface={LOOPBACK}")):
        if option in words:
            words[words.index(option) + 1] = free
    return words


def test_socket_unit_matches_service() -> None:
    """
    The name the service asks systemd for is the socket unit's
    C{FileDescriptorName}.
    """
    name = unit("twisted-net.socket")["Socket"]["FileDescriptorName"]
    listen = exec_start()[exec_start().index("--listen") + 1]
    assert listen.startswith("systemd:")
    assert f"name={name}" in listen.split(":")


def test_served_on_inherited_socket(tmp_path: Path) -> None:
    """
    Socket activation as systemd does it: the first client's connection
    starts the server, which greets it on the inherited socket, answers,
    logs the C{systemd:} endpoint it listens on, and stops cleanly.
    """
    assert ACTIVATE is not None
    name = unit("twisted-net.socket")["Socket"]["FileDescriptorName"]
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    errors = (tmp_path / "stderr.log").open("wb")
    process = subprocess.Popen(
        [ACTIVATE, "-l", f"{LOOPBACK}:{port}", f"--fdname={name}", *exec_start()],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=errors,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = socket.create_connection((LOOPBACK, port), timeout=15)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with client:
            assert client.recv(1024) == b"Welcome!"
            client.send(b"Michael")
            assert client.recv(1024) == b"Hello, Michael!"
            client.send(b"exit")
            assert client.recv(1024) == b""
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(5)
        log.close()
        errors.close()
    lines = (tmp_path / "server.log").read_text().splitlines()
    events = [json.loads(line.strip("\x1e")) for line in lines if line.strip("\x1e")]
    listening = [e for e in events if e.get("event") == "listening" and "endpoint" in e]
    assert listening[0]["endpoint"].startswith("systemd:")
    assert listening[0]["address"] == f"{LOOPBACK}:{port}"
    assert code in (0, -signal.SIGTERM)  # systemd counts death by SIGTERM as clean
    assert "Traceback" not in "\n".join(lines) + (tmp_path / "stderr.log").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_units_verify(tmp_path: Path) -> None:
    """
    C{systemd-analyze verify} finds nothing wrong with the units (with
    C{ExecStart} pointing at the installed C{twist}).
    """
    for name in ("twisted-net.socket", "twisted-net.service"):
        text = (UNITS / name).read_text()
        text = text.replace("/opt/twisted-net/bin/twist", installed_script("twist"))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(tmp_path / "twisted-net.socket"),
            str(tmp_path / "twisted-net.service"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line for line in (result.stdout + result.stderr).splitlines() if "twisted-net" in line
    ]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
