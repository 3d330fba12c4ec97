"""
Tests for L{twisted_net.netepoll.lean}: C{twist net} starts without pyOpenSSL (and
with it C{cryptography}'s Rust extension) when no endpoint needs TLS, and
with it otherwise.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from OpenSSL.SSL import Error as OpenSSLError
from support import RunningServer, write_tls_files
from twisted.application.twist._options import TwistOptions
from twisted.python import usage
from twisted.python.failure import Failure

from twisted_net.netepoll import lean
from twisted_net.server.gate import _is_tls_error
from twisted_net.tap import Options, _under_twist

CRYPTOGRAPHY_EXTENSION = "cryptography/hazmat/bindings/_rust"
"""Part of the path of the shared library pyOpenSSL loads, as /proc maps show it."""


def test_nothing_hidden_once_imported() -> None:
    """
    In a process that has pyOpenSSL and Twisted's TCP already (this one),
    or when asked not to, L{lean.openssl_hidden} changes nothing.
    """
    assert "OpenSSL" in sys.modules
    before = sys.modules["OpenSSL"]
    with lean.openssl_hidden() as hidden:
        assert hidden is False
        assert sys.modules["OpenSSL"] is before
    with lean.openssl_hidden(False) as hidden:
        assert hidden is False
    assert sys.modules["OpenSSL"] is before


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hidden_twisted_imports_without_tls() -> None:
    """
    Twisted's reactor and endpoint modules imported within the block set
    themselves up without TLS and load no pyOpenSSL; afterwards pyOpenSSL
    imports again.  This fails if Twisted stops treating pyOpenSSL as
    optional (its guarded imports) or grows another way to load it.
    """
    result = _python(
        """
        import sys
        from twisted_net.netepoll import lean

        with lean.openssl_hidden() as hidden:
            assert hidden is True
            from twisted.internet import endpoints, posixbase, tcp
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in
                        ("OpenSSL", "cryptography", "service_identity"))
        assert not loaded, loaded
        assert "twisted.internet._sslverify" not in sys.modules
        assert tcp.Server.TLS is False and not hasattr(tcp.Server, "startTLS")
        assert posixbase.tls is None and endpoints.TLSMemoryBIOFactory is None
        assert "OpenSSL" not in sys.modules
        import OpenSSL.SSL
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    "module",
    ["twisted_net.tap", "twisted_net.server.workers.worker", "twisted.plugins.twisted_net"],
)
def test_entry_points_import_no_reactor(module: str) -> None:
    """
    The modules C{twist net} and a C{--workers} worker import before they
    call L{lean.import_twisted} leave Twisted's TCP, endpoint and TLS modules
    unimported, so that the call can still import them without pyOpenSSL.
    This fails when a module imported at the top of either entry point starts
    importing one of them.
    """
    result = _python(
        f"""
        import sys
        import {module}
        loaded = sorted(name for name in sys.modules if name in (
            "twisted.internet.tcp", "twisted.internet.endpoints",
            "twisted.internet.reactor", "OpenSSL"))
        print(loaded)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_twisted_without_tls() -> None:
    """
    L{lean.import_twisted} installs the reactor it is given and imports the
    endpoint parsers without pyOpenSSL when asked to; pyOpenSSL imports
    again afterwards.
    """
    result = _python(
        """
        import sys
        from twisted_net.netepoll import lean

        def install():
            from twisted.internet import pollreactor
            pollreactor.install()

        reactor = lean.import_twisted(True, install)
        from twisted.internet import endpoints, tcp
        assert type(reactor).__name__ == "PollReactor", reactor
        assert tcp.Server.TLS is False and endpoints.TLSMemoryBIOFactory is None
        assert "OpenSSL" not in sys.modules
        import OpenSSL.SSL
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_twisted_with_tls() -> None:
    result = _python(
        """
        from twisted_net.netepoll import lean

        lean.import_twisted(False, lambda: None)
        from twisted.internet import tcp
        print(hasattr(tcp.Server, "startTLS"))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_hidden_after_twisted_tcp_is_refused() -> None:
    """
    Once C{twisted.internet.tcp} is imported (with TLS), hiding pyOpenSSL
    would only make later imports inconsistent: nothing is hidden.
    """
    result = _python(
        """
        import sys
        import twisted.internet.tcp
        from twisted_net.netepoll import lean

        with lean.openssl_hidden() as hidden:
            print(hidden, sys.modules.get("OpenSSL", "absent") is None)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_under_twist() -> None:
    """
    Only the C{net} subcommand of a C{twist} command line shapes imports; a
    program (or test) parsing L{Options} on their own does not.
    """
    alone = Options()
    alone.parseOptions(["--listen", "tcp:0"])
    assert _under_twist(alone) is False
    twist = TwistOptions()
    twist.parseOptions(["net", "--listen", "tcp:0:interface=127.0.0.1", "--udp", "127.0.0.1:0"])
    assert _under_twist(twist.subOptions) is True


def test_under_twist_without_twist_options() -> None:
    """
    A parent that is not C{twist}'s (here: one that installs no reactor)
    does not make the options shape imports.
    """

    class Parent(usage.Options):
        subCommands = [["net", None, Options, "net"]]  # noqa: RUF012

    parent = Parent()
    parent.parseOptions(["net", "--listen", "tcp:0", "--no-udp"])
    assert _under_twist(parent.subOptions) is False


def test_gate_tls_error() -> None:
    """
    The handshake gate recognises OpenSSL's errors, and nothing else, also
    when pyOpenSSL has never been imported (then no error can be one).
    """
    assert _is_tls_error(Failure(OpenSSLError([("SSL routines", "", "wrong version number")])))
    assert not _is_tls_error(Failure(ConnectionError("reset")))


def test_gate_tls_error_without_openssl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "OpenSSL.SSL")
    assert not _is_tls_error(Failure(ConnectionError("reset")))


def _maps(server: RunningServer) -> str:
    return Path(f"/proc/{server.process.pid}/maps").read_text()


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/maps").exists(), reason="needs Linux /proc/PID/maps"
)


@needs_proc
def test_twist_net_without_tls_loads_no_openssl(
    twist_net: Callable[..., RunningServer],
) -> None:
    """
    C{twist net} with plain TCP, PROXY-protocol TCP and UDP endpoints serves
    them all without loading C{cryptography}'s extension; a bad PROXY
    header is still refused (through the gate's TLS-error check, with no
    pyOpenSSL to look at).
    """
    server = twist_net(
        [
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--listen",
            "haproxy:tcp:0:interface=127.0.0.1",
            "--udp",
            "127.0.0.1:0",
        ]
    )
    plain, proxied = (port for _, port in server.listening("tcp"))
    with socket.create_connection(("127.0.0.1", plain), timeout=10) as client:
        assert client.recv(100) == b"Welcome!"
        client.sendall(b"bob")
        assert client.recv(100) == b"Hello, bob!"
    with socket.create_connection(("127.0.0.1", proxied), timeout=10) as client:
        client.sendall(b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 9999\r\n")
        assert client.recv(100) == b"Welcome!"
    with socket.create_connection(("127.0.0.1", proxied), timeout=10) as client:
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):  # refused: aborted
            assert client.recv(100) == b""
    server.wait_for(lambda e: e.get("event") == "refused" and e.get("reason") == "proxy-header")
    assert CRYPTOGRAPHY_EXTENSION not in _maps(server)
    assert server.stop() in (0, -signal.SIGTERM)


@needs_proc
def test_twist_net_with_tls_loads_openssl(
    twist_net: Callable[..., RunningServer], tmp_path: Path
) -> None:
    """
    With an C{ssl:} endpoint among plain ones, pyOpenSSL is there from the
    start, as before, and TLS clients are answered.
    """
    ca = trustme.CA()
    files = write_tls_files(ca, tmp_path, "localhost", "127.0.0.1")
    key, chain = files["key"], files["cert"]
    server = twist_net(
        [
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--listen",
            f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={chain}",
            "--no-udp",
        ]
    )
    assert CRYPTOGRAPHY_EXTENSION in _maps(server)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    tls_port = server.listening("tcp")[1][1]
    with (
        socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as client,
    ):
        assert client.recv(100) == b"Welcome!"
    assert server.stop() in (0, -signal.SIGTERM)


@needs_proc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--workers needs Linux")
def test_workers_without_tls_load_no_openssl(twist_net: Callable[..., RunningServer]) -> None:
    """
    The workers of C{twist net --workers} start without pyOpenSSL too when
    no endpoint needs TLS, and serve.
    """
    server = twist_net(
        ["--workers", "2", "--listen", "tcp:0:interface=127.0.0.1", "--udp", "127.0.0.1:0"]
    )
    started = [
        server.wait_for(
            lambda e, i=index: e.get("event") == "worker_started" and e.get("worker") == i
        )
        for index in (0, 1)
    ]
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=10) as client:
        assert client.recv(100) == b"Welcome!"
    for event in started:
        maps = Path(f"/proc/{event['worker_pid']}/maps").read_text()
        assert CRYPTOGRAPHY_EXTENSION not in maps
    assert server.stop() in (0, -signal.SIGTERM)
