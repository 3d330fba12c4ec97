"""
Shared helpers for tests that run the installed programs as subprocesses.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

__all__ = ["RunningServer", "installed_script", "start_server"]


def ipv6_loopback_usable() -> bool:
    """
    Whether this machine can bind ::1 (containers without IPv6 cannot).
    """
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_usable(), reason="::1 is not bindable")
"""Skip a test where ::1 cannot be bound."""


def installed_script(name: str) -> str:
    """
    The path of a console script installed beside the running Python (the
    project's own C{twisted-net}, or Twisted's C{twist}).
    """
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: pip install '.[test]' first")
    return found


def _parse_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class RunningServer:
    """
    A C{twist --log-format json net ...} subprocess, its JSON log events and
    the addresses it reported as bound.
    """

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        twist_options: list[str] | None = None,
    ) -> None:
        command = [
            installed_script("twist"),
            "--log-format",
            "json",
            *(twist_options or []),
            "net",
            *args,
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.events: list[dict[str, Any]] = []
        self.raw_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").strip()
            with self._lock:
                self.raw_lines.append(line)
                with contextlib.suppress(ValueError):
                    self.events.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            with self._lock:
                self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        """
        Wait until a log event satisfies C{predicate}; return it.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            with self._lock:
                new = self.events[seen:]
                seen = len(self.events)
            for event in new:
                if predicate(event):
                    return event
            if self.process.poll() is not None and seen == len(self.events):
                time.sleep(0.2)
                with self._lock:
                    if seen == len(self.events):
                        break
            time.sleep(0.02)
        raise AssertionError(
            f"no matching log event; exit={self.process.poll()} "
            f"stdout={self.raw_lines[-20:]} stderr={self.stderr_lines[-20:]}"
        )

    def wait_started(self, timeout: float = 20.0) -> None:
        self.wait_for(lambda e: e.get("log_format") == "Starting reactor...", timeout)

    def listening(self, kind: str) -> list[tuple[str, int]]:
        """
        Addresses bound, as logged: C{kind} is C{"tcp"} or C{"udp"}.
        """
        with self._lock:
            events = list(self.events)
        found = []
        for event in events:
            if event.get("event") != "listening":
                continue
            is_udp = "endpoint" not in event
            if (kind == "udp") == is_udp:
                found.append(_parse_host_port(event["address"]))
        return found

    @property
    def tcp_port(self) -> int:
        return self.listening("tcp")[0][1]

    @property
    def udp_port(self) -> int:
        return self.listening("udp")[0][1]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """
        Send C{sig} and wait for the exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(5)
        for reader in self._readers:
            reader.join(5)
        return code


def start_server(args: list[str], **kwargs: Any) -> RunningServer:
    """
    Start C{twist net} with C{args} and wait until its reactor runs.
    """
    server = RunningServer(args, **kwargs)
    try:
        server.wait_started()
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    return server


def write_tls_files(ca: Any, directory: Path, *names: str) -> dict[str, Path]:
    """
    A server certificate for C{names} signed by C{ca} (a C{trustme.CA}), its
    key, and the CA's own certificate, as PEM files in C{directory}.

    @return: their paths, under C{"key"}, C{"cert"} and C{"ca"}.
    """
    issued = ca.issue_cert(*names)
    files = {
        "key": directory / "server.key",
        "cert": directory / "server.pem",
        "ca": directory / "ca.pem",
    }
    issued.private_key_pem.write_to_path(str(files["key"]))
    issued.cert_chain_pems[0].write_to_path(str(files["cert"]))
    ca.cert_pem.write_to_path(str(files["ca"]))
    return files
