"""
Tests of the C{twisted-net} command: its argument parsing and error lines in
process, and end to end, the installed console script as a subprocess
against the installed C{twist net} (and a local HTTP server for C{fetch}).
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from OpenSSL import SSL
from service_identity import VerificationError
from support import RunningServer, installed_script, ipv6_loopback_usable, needs_ipv6
from twisted.internet import error as net_error
from twisted.internet.defer import ensureDeferred, fail
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.client import ResponseNeverReceived

from twisted_net.cli.commands import _endpoint, _run_udp
from twisted_net.cli.console import StandardOutput
from twisted_net.cli.errors import CLIError, describe_error
from twisted_net.cli.parser import build_parser
from twisted_net.client.endpoints import endpoint_problem

LOOPBACK = "127.0.0.1"
GREETINGS = b"Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\n"


def twisted_net(
    *args: str, stdin: bytes = b"", timeout: float = 20.0
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [installed_script("twisted-net"), *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[bytes], *words: str) -> str:
    """
    A failure: non-zero status, exactly one line on stderr, no traceback.
    """
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode != 0, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("twisted-net: error: "), stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(twist_net: Callable[..., RunningServer]) -> RunningServer:
    return twist_net(["--listen", f"tcp:0:interface={LOOPBACK}", "--udp", f"{LOOPBACK}:0"])


# in process ------------------------------------------------------------------------


def test_parser_defaults() -> None:
    args = build_parser(["tcp"]).parse_args(["tcp"])
    assert (args.connect, args.framing, args.names, args.interactive) == (
        "tcp:127.0.0.1:9999",
        "seed",
        [],
        False,
    )
    args = build_parser(["udp"]).parse_args(["udp", "a", "b"])
    assert (args.connect, args.timeout, args.retries, args.names) == (
        "127.0.0.1:9999",
        2.0,
        2,
        [b"a", b"b"],
    )


def test_parser_rejects_negative_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser(["udp"]).parse_args(["udp", "--timeout", "-1"])
    assert exit_.value.code == 2
    assert "seconds must be 0 or more" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (net_error.ConnectionRefusedError(), "connection refused"),
        (net_error.DNSLookupError("no.such.host.invalid"), "cannot resolve the host name"),
        (TimeoutError(), "timed out"),
        (
            ResponseNeverReceived([Failure(net_error.ConnectionRefusedError())]),
            "connection refused",
        ),
        (
            SSL.Error([("SSL routines", "", "certificate verify failed")]),
            "TLS error: certificate verify failed",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "ca.pem"),
            "No such file or directory: ca.pem",
        ),
        (net_error.ConnectError(osError=2), "cannot connect: No such file or directory"),
        (net_error.NoRouteError(113, "No route to host"), "cannot connect: No route to host"),
        (VerificationError([]), "TLS error: the server's certificate is not for this host"),
        (KeyError("x"), "unexpected KeyError"),
    ],
)
def test_describe_error(error: Exception, text: str) -> None:
    line = describe_error(Failure(error))
    assert text in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("tcp:127.0.0.1", "missing port; expected tcp:HOST:PORT"),
        ("tcp:127.0.0.1:notaport", "'notaport' is not a number; expected tcp:HOST:PORT"),
        ("tcp:127.0.0.1:1:colour=red", "unknown option 'colour'"),
        ("tls:localhost:1:colour=red", "unknown option(s) colour"),
        ("bogus:1", "Unknown endpoint type: 'bogus'; expected one of tcp:HOST:PORT"),
    ],
)
def test_bad_endpoint_says_what_is_wrong(endpoint: str, problem: str) -> None:
    """
    A bad endpoint string is a usage error that says what is wrong in the
    endpoint's own terms, not the internals of Twisted's parser.
    """
    with pytest.raises(CLIError) as raised:
        _endpoint(MemoryReactorClock(), endpoint)
    assert str(raised.value).startswith(f"bad endpoint {endpoint!r}: {problem}")
    assert raised.value.status == 2
    assert "__init__" not in str(raised.value)


def test_bad_endpoint_trust_roots(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(CLIError) as raised:
        _endpoint(MemoryReactorClock(), f"tls:localhost:1:trustRoots={missing}")
    assert str(raised.value).endswith(
        f": cannot read the trustRoots directory {missing}: No such file or directory"
    )


def test_endpoint_problem_never_empty() -> None:
    """
    An exception without text still gives a reason: its type.
    """
    assert endpoint_problem("x:1", RuntimeError()) == "RuntimeError"


def test_udp_errors_name_the_target() -> None:
    """
    A UDP failure starts with the server's address, as tcp and fetch
    errors do (the resolver is fake: no name is looked up for real).
    """

    class FailingResolver(MemoryReactorClock):
        def resolve(self, name: str, timeout: object = None) -> object:
            return fail(net_error.DNSLookupError(name))

    args = build_parser(["udp"]).parse_args(["udp", "-c", "nonexistent.invalid:9999", "a"])
    failures: list[Failure] = []
    running = ensureDeferred(_run_udp(FailingResolver(), args, StandardOutput()))
    running.addErrback(failures.append)
    assert len(failures) == 1
    assert str(failures[0].value) == (
        "nonexistent.invalid:9999: cannot resolve the host name: nonexistent.invalid"
    )


# tcp, end to end --------------------------------------------------------------------


def test_tcp_default_names(server: RunningServer) -> None:
    result = twisted_net("tcp", "--connect", f"tcp:{LOOPBACK}:{server.tcp_port}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == GREETINGS
    assert result.stderr == b""


def test_tcp_line_framing(twist_net: Callable[..., RunningServer]) -> None:
    server = twist_net(["--framing", "line", "--listen", f"tcp:0:interface={LOOPBACK}", "--no-udp"])
    result = twisted_net(
        "tcp", "--framing", "line", "-c", f"tcp:{LOOPBACK}:{server.tcp_port}", "Ana", "Bo"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Welcome!\nHello, Ana!\nHello, Bo!\n"


def test_tcp_interactive(server: RunningServer) -> None:
    """
    C{-i}: one message per line of standard input, until end of input.
    """
    result = twisted_net(
        "tcp", "-i", "-c", f"tcp:{LOOPBACK}:{server.tcp_port}", stdin=b"Alice\nBob\r\nCarol"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Welcome!\nHello, Alice!\nHello, Bob!\nHello, Carol!\n"


def test_tcp_interactive_exit_line_ends(server: RunningServer) -> None:
    """
    A line C{exit} ends the conversation like end of input; the rest of the
    input is not sent; an empty line cannot be sent in the seed framing.
    """
    result = twisted_net(
        "tcp", "-i", "-c", f"tcp:{LOOPBACK}:{server.tcp_port}", stdin=b"A\n\nexit\nB\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Welcome!\nHello, A!\n"
    assert b"skipped line" in result.stderr


def test_python_dash_m(server: RunningServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twisted_net", "tcp", "-c", f"tcp:{LOOPBACK}:{server.tcp_port}"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == GREETINGS


def test_one_address_form_everywhere(twist_net: Callable[..., RunningServer]) -> None:
    """
    C{HOST:PORT} (and C{PORT} alone) reaches the server from tcp, udp and
    bench alike; C{tcp:} endpoint strings keep working.
    """
    server = twist_net(
        ["--listen", f"tcp:0:interface={LOOPBACK}", "--udp", f"{LOOPBACK}:0", "--udp-rate", "0"]
    )
    for where in (f"{LOOPBACK}:{server.tcp_port}", f"localhost:{server.tcp_port}"):
        tcp = twisted_net("tcp", "--connect", where, "Ana")
        assert (tcp.returncode, tcp.stdout) == (0, b"Welcome!\nHello, Ana!\n"), tcp.stderr
    tcp = twisted_net("tcp", "--connect", str(server.tcp_port), "Ana")
    assert (tcp.returncode, tcp.stdout) == (0, b"Welcome!\nHello, Ana!\n"), tcp.stderr
    udp = twisted_net("udp", "--connect", f"{LOOPBACK}:{server.udp_port}", "Ana")
    assert (udp.returncode, udp.stdout) == (0, b"Hello, Ana!\n"), udp.stderr
    bench = twisted_net(
        "bench", "-c", f"{LOOPBACK}:{server.tcp_port}", "-d", "0.3", "-n", "2", "-q", timeout=30
    )
    assert bench.returncode == 0, bench.stderr
    assert b"lockstep" in bench.stdout


@needs_ipv6
def test_ipv6_address_form_everywhere(twist_net: Callable[..., RunningServer]) -> None:
    server = twist_net(
        ["--listen", r"tcp6:0:interface=\:\:1", "--udp", "[::1]:0", "--udp-rate", "0"]
    )
    tcp = twisted_net("tcp", "--connect", f"[::1]:{server.tcp_port}", "six")
    assert (tcp.returncode, tcp.stdout) == (0, b"Welcome!\nHello, six!\n"), tcp.stderr
    bench = twisted_net(
        "bench", "-c", f"[::1]:{server.tcp_port}", "-d", "0.3", "-n", "2", "-q", timeout=30
    )
    assert bench.returncode == 0, bench.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["tcp", "-c", "127.0.0.1:99999"], ["port must be 1 to 65535"]),
        (["tcp", "-c", "tcp:127.0.0.1:99999"], ["port 99999 is out of range (1 to 65535)"]),
        (["tcp", "-c", "[::1]9999"], ["use [IPV6]:PORT"]),
        (["udp", "-c", "127.0.0.1:0"], ["port must be 1 to 65535"]),
        (["bench", "-c", "::1:9999"], ["put IPv6 hosts in brackets"]),
    ],
)
def test_bad_address_is_a_usage_error(args: list[str], words: list[str]) -> None:
    result = twisted_net(*args)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr and "Error" not in stderr
    for word in words:
        assert word in stderr


def test_tcp_refused() -> None:
    port = free_port()
    result = twisted_net("tcp", "-c", f"tcp:{LOOPBACK}:{port}")
    assert_one_error_line(result, "connection refused", str(port))
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("bogus:1", ["Unknown endpoint type"]),
        ("tcp:127.0.0.1", ["missing port; expected tcp:HOST:PORT"]),
        ("tcp:127.0.0.1:notaport", ["'notaport' is not a number"]),
        (
            "tls:localhost:19443:trustRoots=/nonexistent",
            ["trustRoots directory /nonexistent: No such file or directory"],
        ),
    ],
)
def test_tcp_bad_endpoint(endpoint: str, words: list[str]) -> None:
    result = twisted_net("tcp", "-c", endpoint)
    line = assert_one_error_line(result, "bad endpoint", *words)
    assert not line.endswith(": ")
    assert result.returncode == 2


def test_tcp_unix_socket_missing(tmp_path: Path) -> None:
    where = f"unix:{tmp_path / 'no.sock'}"
    result = twisted_net("tcp", "-c", where)
    line = assert_one_error_line(result)
    assert line == f"twisted-net: error: {where}: cannot connect: No such file or directory"
    assert result.returncode == 1


def test_tcp_interactive_refuses_names() -> None:
    """
    C{-i} reads the messages from standard input: NAMEs with it are a usage
    error, not silently ignored (and nothing is connected to).
    """
    result = twisted_net("tcp", "-i", "-c", f"tcp:{LOOPBACK}:{free_port()}", "Ana")
    assert_one_error_line(result, "-i/--interactive", "NAME")
    assert result.returncode == 2


def test_tcp_timeout_against_silent_server() -> None:
    with socket.socket() as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(1)
        result = twisted_net(
            "tcp", "--timeout", "0.5", "-c", f"tcp:{LOOPBACK}:{silent.getsockname()[1]}"
        )
    assert_one_error_line(result, "timed out after 0.5 s waiting for the greeting")


def test_tcp_wrong_framing_hint(server: RunningServer) -> None:
    result = twisted_net(
        "tcp", "--framing", "line", "--timeout", "0.5", "-c", f"tcp:{LOOPBACK}:{server.tcp_port}"
    )
    line = assert_one_error_line(result, "waiting for the greeting's line ending", "framing 'seed'")
    assert "waiting for the greeting (" not in line
    assert result.stdout == b"Welcome!\n"


def test_tls_endpoint(twist_net: Callable[..., RunningServer], tmp_path: Path) -> None:
    """
    C{tls:} client endpoints, trusting a test authority with C{trustRoots}.
    """
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("localhost")
    key = tmp_path / "server.pem"
    certificate.private_key_and_cert_chain_pem.write_to_path(str(key))
    roots = tmp_path / "roots"
    roots.mkdir()
    authority.cert_pem.write_to_path(str(roots / "ca.pem"))
    server = twist_net(["--listen", f"ssl:0:interface={LOOPBACK}:privateKey={key}", "--no-udp"])
    result = twisted_net("tcp", "-c", f"tls:localhost:{server.tcp_port}:trustRoots={roots}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == GREETINGS
    untrusted = twisted_net("tcp", "-c", f"tls:localhost:{server.tcp_port}")
    line = assert_one_error_line(untrusted)
    assert line.startswith(
        f"twisted-net: error: tls:localhost:{server.tcp_port}: "
        "TLS error: certificate verify failed ("
    )
    assert "[(" not in line and "closed the connection" not in line
    other_host = twisted_net("tcp", "-c", f"tls:{LOOPBACK}:{server.tcp_port}:trustRoots={roots}")
    line = assert_one_error_line(other_host, "TLS error: the server's certificate is not for")
    assert "VerificationError" not in line


def test_tls_to_a_plain_port(server: RunningServer) -> None:
    result = twisted_net("tcp", "-c", f"tls:localhost:{server.tcp_port}")
    line = assert_one_error_line(result, "TLS error: wrong version number")
    assert "[(" not in line


# udp, end to end --------------------------------------------------------------------


def test_udp_default_names(server: RunningServer) -> None:
    result = twisted_net("udp", "--connect", f"{LOOPBACK}:{server.udp_port}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Hello, Michael!\nHello, Tracy!\nHello, Sarah!\n"


@pytest.mark.skipif(not ipv6_loopback_usable(), reason="::1 is not bindable")
def test_ipv6_tcp_and_udp(twist_net: Callable[..., RunningServer]) -> None:
    server = twist_net(["--listen", r"tcp6:0:interface=\:\:1", "--udp", "[::1]:0"])
    tcp = twisted_net("tcp", "-c", rf"tcp:host=\:\:1:port={server.tcp_port}", "six")
    assert tcp.returncode == 0, tcp.stderr
    assert tcp.stdout == b"Welcome!\nHello, six!\n"
    udp = twisted_net("udp", "-c", f"[::1]:{server.udp_port}", "six")
    assert udp.returncode == 0, udp.stderr
    assert udp.stdout == b"Hello, six!\n"


def test_udp_nothing_answers() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        port = silent.getsockname()[1]
        result = twisted_net(
            "udp", "-c", f"{LOOPBACK}:{port}", "--timeout", "0.2", "--retries", "2"
        )
        received = []
        silent.setblocking(False)
        while True:
            try:
                received.append(silent.recv(100))
            except BlockingIOError:
                break
    lines = result.stderr.decode().splitlines()
    assert [line.split(": no reply to ")[1].split("'")[1] for line in lines] == [
        "Michael",
        "Tracy",
        "Sarah",
    ]
    for line in lines:
        assert line.startswith(f"twisted-net: error: {LOOPBACK}:{port}: no reply to '")
        assert "after 3 attempt(s)" in line
    assert result.returncode == 1
    assert received == [b"Michael"] * 3 + [b"Tracy"] * 3 + [b"Sarah"] * 3
    assert result.stdout == b""


class LossyUDPServer(threading.Thread):
    """
    A UDP greeting server on 127.0.0.1 that misbehaves on purpose, name by
    name: C{plan[name]} lists what to do with each attempt in turn
    (C{None}: drop it, C{b"reply"}: answer properly, other bytes: send
    those instead).  Names without a plan are answered.
    """

    def __init__(self, plan: dict[bytes, list[bytes | None]]) -> None:
        super().__init__(daemon=True)
        self.plan = {name: list(steps) for name, steps in plan.items()}
        self.seen: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                datagram, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            self.seen.append(datagram)
            steps = self.plan.get(datagram, [])
            step = steps.pop(0) if steps else b"reply"
            if step == b"reply":
                self.sock.sendto(b"Hello, " + datagram + b"!", addr)
            elif step is not None:
                self.sock.sendto(step, addr)

    def __enter__(self) -> LossyUDPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join(5)
        self.sock.close()


def test_udp_tries_every_name_and_reports_each_missing_one() -> None:
    """
    Michael is never answered, Tracy only on the second try, Sarah with
    garbage: Tracy's reply is printed, Michael and Sarah get one line
    each (Sarah's says what came instead), and the exit status is 1.
    """
    plan: dict[bytes, list[bytes | None]] = {
        b"Michael": [None, None, None],
        b"Tracy": [None, b"reply"],
        b"Sarah": [b"garbage", b"garbage", b"garbage"],
    }
    with LossyUDPServer(plan) as server:
        result = twisted_net(
            "udp", "-c", f"{LOOPBACK}:{server.port}", "--timeout", "0.3", "--retries", "2"
        )
    where = f"{LOOPBACK}:{server.port}"
    assert result.stdout == b"Hello, Tracy!\n"
    assert result.stderr.decode().splitlines() == [
        f"twisted-net: error: {where}: no reply to 'Michael' after 3 attempt(s), 0.3 s each "
        "(is the server running?)",
        f"twisted-net: error: {where}: no reply to 'Sarah' after 3 attempt(s), 0.3 s each; "
        "the server sent 'garbage' (and 2 more datagram(s)) instead",
    ]
    assert result.returncode == 1
    assert server.seen == [b"Michael"] * 3 + [b"Tracy"] * 2 + [b"Sarah"] * 3


def test_udp_bad_address() -> None:
    result = twisted_net("udp", "-c", "::1:9999")
    assert_one_error_line(result, "brackets")
    assert result.returncode == 2


# fetch, end to end ------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/missing":
            body = b"not here\n"
            self.send_response(404, "Not Found")
        elif self.path == "/teapot":
            body = b"short and stout\n"
            self.send_response(418, "")
        else:
            body = b"<html>" + self.path.encode() + b"</html>\n"
            self.send_response(200, "OK")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Test", "yes")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def https_web(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    import ssl

    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], ca_file
    httpd.shutdown()
    httpd.server_close()


def test_fetch_https_with_ca_file(https_web: tuple[int, Path]) -> None:
    port, ca_file = https_web
    url = f"https://localhost:{port}/secure"
    result = twisted_net("fetch", "--ca-file", str(ca_file), url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"<html>/secure</html>\n"
    raw = twisted_net("fetch", "--raw", "--ca-file", str(ca_file), url)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    untrusted = twisted_net("fetch", url)
    assert_one_error_line(untrusted, "TLS error", "certificate verify failed")


def test_fetch_body_to_stdout_head_to_stderr(web: int) -> None:
    result = twisted_net("fetch", f"http://{LOOPBACK}:{web}/page")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"<html>/page</html>\n"
    assert result.stderr.startswith(b"HTTP/1.1 200 OK\n")
    assert b"\nX-Test: yes\n" in result.stderr


def test_fetch_to_file(web: int, tmp_path: Path) -> None:
    target = tmp_path / "page.html"
    result = twisted_net("fetch", f"http://{LOOPBACK}:{web}/a", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert target.read_bytes() == b"<html>/a</html>\n"


def test_fetch_raw(web: int) -> None:
    result = twisted_net("fetch", "--raw", f"http://{LOOPBACK}:{web}/r")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert result.stdout.endswith(b"\r\n\r\n<html>/r</html>\n")
    assert result.stderr == b""


def test_fetch_404(web: int) -> None:
    result = twisted_net("fetch", f"http://{LOOPBACK}:{web}/missing")
    assert result.stdout == b"not here\n"
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "HTTP/1.1 404 Not Found"
    assert lines[-1].startswith("twisted-net: error: ") and "404 Not Found" in lines[-1]
    assert "Traceback" not in result.stderr.decode()


def test_fetch_host_port_means_http(web: int) -> None:
    result = twisted_net("fetch", f"{LOOPBACK}:{web}/page")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"<html>/page</html>\n"


@pytest.mark.parametrize(
    ("url", "words"),
    [("not a url", ["bad URL"]), ("gopher://x/", ["bad URL", "gopher"])],
)
def test_fetch_bad_url(url: str, words: list[str]) -> None:
    result = twisted_net("fetch", url)
    assert_one_error_line(result, *words)
    assert result.returncode == 2


def test_fetch_refused() -> None:
    result = twisted_net("fetch", f"http://{LOOPBACK}:{free_port()}/")
    assert_one_error_line(result, "connection refused")


@pytest.mark.parametrize("command", [[], ["tcp"], ["udp"], ["fetch"]])
def test_help(command: list[str]) -> None:
    result = twisted_net(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(b"usage: twisted-net")


# errors in the user's words ---------------------------------------------------------


PYTHON_WORDS = ("Error:", "Traceback", "b'", "[('", "int()", "argument '", "unexpected ")


def assert_users_words(result: subprocess.CompletedProcess[bytes], status: int, *words: str) -> str:
    """
    One error line, with C{words}, none of Python's, and exit C{status}.
    """
    line = assert_one_error_line(result, *words)
    for word in PYTHON_WORDS:
        assert word not in line, line
    assert line == line.rstrip()
    assert result.returncode == status, line
    return line


@pytest.mark.parametrize("command", ["tcp", "udp", "fetch", "bench"])
def test_unknown_option_shows_the_subcommand_usage(command: str) -> None:
    result = twisted_net(command, "--bogus", "x")
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert stderr.startswith(f"usage: twisted-net {command} "), stderr
    last = stderr.splitlines()[-1]
    assert last.startswith(f"twisted-net {command}: error: unrecognized arguments: --bogus")


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("tcp:127.0.0.1:99999", ["port 99999 is out of range (1 to 65535)"]),
        ("tcp:host=::1:port=9999", ["host given twice", r"host=\:\:1", "[::1]:PORT"]),
        ("tcp:127.0.0.1:abc", ["'abc' is not a number"]),
        ("tcp:127.0.0.1:9999:timeout=-1", ["timeout must be 0 or more seconds"]),
    ],
)
def test_bad_endpoint_in_users_words(endpoint: str, words: list[str]) -> None:
    assert_users_words(twisted_net("tcp", "-c", endpoint), 2, "bad endpoint", *words)


def test_unix_lock_file_named_as_text(tmp_path: Path) -> None:
    path = tmp_path / "no.sock"
    result = twisted_net("tcp", "-c", f"unix:{path}:checkPID=1")
    line = assert_users_words(result, 1)
    assert line.endswith(f"cannot connect: no server holds the lock file {path}.lock")


def test_damaged_ca_file(tmp_path: Path) -> None:
    damaged = tmp_path / "ca.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    result = twisted_net("fetch", "--ca-file", str(damaged), "https://localhost:1/")
    assert_users_words(result, 2, f"--ca-file: {damaged}: not a valid PEM certificate")


def test_bad_ipv6_url() -> None:
    assert_users_words(twisted_net("fetch", "http://[::1:80/"), 2, "bad URL", "IPv6")


def test_fetch_status_without_phrase(web: int) -> None:
    result = twisted_net("fetch", f"http://{LOOPBACK}:{web}/teapot")
    assert result.stdout == b"short and stout\n"
    line = result.stderr.decode().splitlines()[-1]
    assert line == f"twisted-net: error: http://{LOOPBACK}:{web}/teapot: the server answered 418"
    assert result.returncode == 1
