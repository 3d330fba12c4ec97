"""
TLS with the installed C{twist net --listen ssl:...}, certificates made by
C{trustme}: a client that trusts the CA talks; an untrusted certificate,
plain text on the TLS port and a stalled handshake are refused cleanly (no
traceback in the log, a counted refusal).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme
from support import write_tls_files

LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    """
    A server certificate for C{localhost}/127.0.0.1 and its key, and the CA
    that signed it, as PEM files.
    """
    return write_tls_files(ca, tmp_path, "localhost", LOOPBACK)


def ssl_listen(files: dict[str, Path]) -> str:
    return f"ssl:0:interface={LOOPBACK}:privateKey={files['key']}:certKey={files['cert']}"


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def assert_clean(server) -> None:
    text = "\n".join(server.raw_lines + server.stderr_lines)
    assert "Traceback" not in text
    assert not [e for e in server.events if e.get("log_failure") or e.get("isError")]


def refusals(server, reason: str) -> list[dict]:
    return [e for e in server.events if e.get("event") == "refused" and e.get("reason") == reason]


def test_trusted_client_talks(twist_net, ca: trustme.CA, tls_files) -> None:
    """
    A client that trusts the CA and checks the host name gets the greeting
    and its replies over TLS.
    """
    server = twist_net(["--listen", ssl_listen(tls_files), "--no-udp"])
    with (
        socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as raw,
        client_context(ca).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(1024) == b"Welcome!"
        for name in [b"Michael", b"Tracy"]:
            tls.send(name)
            assert tls.recv(1024) == b"Hello, " + name + b"!"
        tls.send(b"exit")
        assert tls.recv(1024) == b""
    server.wait_for(lambda e: e.get("event") == "connection_closed")
    assert server.stop() in (0, -15)
    assert_clean(server)


def test_untrusted_certificate_refused(twist_net, tls_files) -> None:
    """
    A client that does not trust the server's CA aborts the handshake; the
    server counts and logs a C{tls-handshake} refusal, without a traceback.
    """
    server = twist_net(["--listen", ssl_listen(tls_files), "--no-udp"])
    stranger = trustme.CA()
    with (
        socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client_context(stranger).wrap_socket(raw, server_hostname="localhost")
    event = server.wait_for(
        lambda e: e.get("event") == "refused" and e.get("reason") == "tls-handshake"
    )
    assert event["peer"].startswith(f"{LOOPBACK}:")
    assert server.stop() in (0, -15)
    assert_clean(server)


def test_plain_text_on_tls_port_refused(twist_net, tls_files) -> None:
    """
    A tutorial client speaking plain text to the TLS port gets no greeting
    and no reply; the connection is closed and counted as C{tls-handshake}.
    """
    server = twist_net(["--listen", ssl_listen(tls_files), "--no-udp"])
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=5) as raw:
        raw.send(b"Michael\r\n\r\n")
        received = b""
        while chunk := raw.recv(1024):
            received += chunk
    assert b"Welcome" not in received and b"Hello" not in received
    server.wait_for(lambda e: e.get("event") == "refused" and e.get("reason") == "tls-handshake")
    assert server.stop() in (0, -15)
    assert_clean(server)


def test_stalled_handshake_closed(twist_net, tls_files) -> None:
    """
    A client that connects to the TLS port and sends nothing is dropped at
    the handshake deadline (the idle timeout, here 1 s; at most 10 s),
    counted as C{tls-timeout}; it never counted as an open connection.
    """
    server = twist_net(["--listen", ssl_listen(tls_files), "--no-udp", "--idle-timeout", "1"])
    started = time.monotonic()
    with socket.create_connection((LOOPBACK, server.tcp_port), timeout=10) as raw:
        received = b""
        try:
            while chunk := raw.recv(1024):
                received += chunk
        except ConnectionResetError:
            pass
    elapsed = time.monotonic() - started
    assert b"Welcome" not in received
    assert 0.9 <= elapsed < 4
    server.wait_for(lambda e: e.get("event") == "refused" and e.get("reason") == "tls-timeout")
    assert not [e for e in server.events if e.get("event") == "connection_opened"]
    assert server.stop() in (0, -15)
    assert_clean(server)


def run_client(*args: str) -> subprocess.CompletedProcess[str]:
    from support import installed_script

    return subprocess.run(
        [installed_script("twisted-net"), "tcp", *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_twisted_net_client_over_tls(twist_net, ca: trustme.CA, tls_files, tmp_path) -> None:
    """
    C{twisted-net tcp --connect tls:...:trustRoots=DIR} talks to the TLS
    server when DIR holds its CA, and fails (non-zero, one line, no
    traceback) when it holds another CA.
    """
    server = twist_net(["--listen", ssl_listen(tls_files), "--no-udp"])
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    ca.cert_pem.write_to_path(str(trusted / "ca.pem"))
    result = run_client(
        "--connect", f"tls:localhost:{server.tcp_port}:trustRoots={trusted}", "Michael", "Tracy"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Welcome!", "Hello, Michael!", "Hello, Tracy!"]

    strangers = tmp_path / "strangers"
    strangers.mkdir()
    trustme.CA().cert_pem.write_to_path(str(strangers / "other.pem"))
    result = run_client("--connect", f"tls:localhost:{server.tcp_port}:trustRoots={strangers}")
    assert result.returncode != 0
    assert "Welcome!" not in result.stdout
    assert "certificate verify failed" in result.stderr
    assert "Traceback" not in result.stderr
    server.wait_for(lambda e: e.get("event") == "refused" and e.get("reason") == "tls-handshake")
    assert server.stop() in (0, -15)
    assert_clean(server)


def test_handshake_gate_in_memory() -> None:
    """
    L{HandshakeGate}: the greeting protocol is connected at
    C{handshakeCompleted}; a TLS error before that is a counted
    C{tls-handshake} refusal, a plain close is not, and a stall hits the
    deadline as C{tls-timeout}.
    """
    from OpenSSL.SSL import Error as TLSError
    from twisted.internet.address import IPv4Address
    from twisted.internet.error import ConnectionDone
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport
    from twisted.python.failure import Failure

    from twisted_net.config import ServerConfig
    from twisted_net.server.factory import GreetingFactory
    from twisted_net.server.gate import HandshakeGateFactory

    clock = Clock()
    inner = GreetingFactory("line", ServerConfig(idle_timeout=3), clock=clock)
    gate = HandshakeGateFactory(inner, clock)
    gate.doStart()
    peer = IPv4Address("TCP", LOOPBACK, 50000)

    def connect():
        protocol = gate.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport

    good, good_transport = connect()
    assert good_transport.value() == b"" and inner.counters.connections_total == 0
    good.handshakeCompleted()
    assert good_transport.value() == b"Welcome!\r\n"
    good.dataReceived(b"Michael\n")
    assert good_transport.value().endswith(b"Hello, Michael!\r\n")

    failed, _ = connect()
    failed.connectionLost(Failure(TLSError([("SSL routines", "", "wrong version number")])))
    closed, _ = connect()
    closed.connectionLost(Failure(ConnectionDone()))
    assert dict(inner.counters.refusals) == {"tls-handshake": 1}

    _, stalled_transport = connect()
    clock.advance(3.5)
    assert stalled_transport.disconnecting
    assert inner.counters.refusals["tls-timeout"] == 1
    assert inner.counters.connections_total == 1
    gate.doStop()
