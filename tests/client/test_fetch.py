"""
Tests of L{twisted_net.client.fetch} against a local L{twisted.web} server on
127.0.0.1 (plain, chunked, large and missing resources, a silent one for
the timeout), over http and https (a C{trustme} certificate authority), and
of the progress bar on a L{Clock}.
"""

from __future__ import annotations

import io
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, ssl
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.web.resource import NoResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.static import Data

from twisted_net.cli.progress import ProgressBar
from twisted_net.client.fetch import (
    FetchError,
    FetchResult,
    fetch,
    fetch_raw,
    parse_url,
    raw_request,
    trust_root_from_pem,
)

TIMEOUT = 10.0
LARGE = bytes(range(256)) * 12288  # 3 MiB


class Chunked(Resource):
    """
    A body written in pieces without a Content-Length: sent chunked.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> int:
        for piece in (b"hello, ", b"chunked ", b"world"):
            request.write(piece)
        request.finish()
        return NOT_DONE_YET


class Silent(Resource):
    """
    Never answers.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def render_GET(self, request: Request) -> int:
        self.requests.append(request)
        return NOT_DONE_YET


def site() -> tuple[Site, Silent]:
    root = Resource()
    root.putChild(b"plain", Data(b"hello, plain world", "text/plain"))
    root.putChild(b"chunked", Chunked())
    root.putChild(b"large", Data(LARGE, "application/octet-stream"))
    root.putChild(b"missing", NoResource())
    silent = Silent()
    root.putChild(b"silent", silent)
    return Site(root), silent


@pytest.fixture
def http_server() -> Iterator[tuple[int, Silent]]:
    web, silent = site()
    port = reactor.listenTCP(0, web, interface="127.0.0.1")  # type: ignore[attr-defined]
    yield port.getHost().port, silent
    for request in silent.requests:
        if request.channel is not None:
            request.channel.transport.abortConnection()  # type: ignore[union-attr]
    pytest_twisted.blockon(port.stopListening())


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("localhost", "127.0.0.1")
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    pem = b"".join(blob.bytes() for blob in certificate.cert_chain_pems)
    pem += certificate.private_key_pem.bytes()
    options = ssl.PrivateCertificate.loadPEM(pem).options()
    web, _ = site()
    port = reactor.listenSSL(0, web, options, interface="127.0.0.1")  # type: ignore[attr-defined]
    yield port.getHost().port, ca_file
    pytest_twisted.blockon(port.stopListening())


def awaited(deferred: Deferred[Any]) -> Deferred[Any]:
    return deferred.addTimeout(TIMEOUT, reactor)  # type: ignore[arg-type]


# URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("example.com/", "expected http://"),
        ("ftp://example.com/", "scheme 'ftp'"),
        ("http:///path", "no host"),
        ("http://example.com:99999/", "out of range"),
        ("http://example.com:x/", "not a number"),
        ("http://example.com/a b", "spaces"),
    ],
)
def test_bad_urls(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_url(url)


def test_raw_request_is_the_tutorials() -> None:
    assert raw_request("http://www.sina.com.cn/") == (
        b"GET / HTTP/1.1\r\nHost: www.sina.com.cn\r\nConnection: close\r\n\r\n"
    )
    assert raw_request("http://127.0.0.1:8080/a/b?c=d") == (
        b"GET /a/b?c=d HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"
    )
    assert raw_request("https://[::1]:443") == (
        b"GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n"
    )


# http ------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_fetch_plain(http_server: tuple[int, Silent]) -> Generator[Deferred[Any], Any, None]:
    port, _ = http_server
    heads: list[FetchResult] = []
    url = f"http://127.0.0.1:{port}/plain"
    result = yield awaited(fetch(reactor, url, on_response=heads.append))
    assert result.status_line == b"HTTP/1.1 200 OK"
    assert result.body == b"hello, plain world"
    assert (b"Content-Type", b"text/plain") in result.headers
    assert heads and heads[0].body is None


@pytest_twisted.inlineCallbacks
def test_fetch_decodes_chunked(
    http_server: tuple[int, Silent],
) -> Generator[Deferred[Any], Any, None]:
    port, _ = http_server
    raw = yield awaited(fetch_raw(reactor, f"http://127.0.0.1:{port}/chunked"))
    assert b"\r\nTransfer-Encoding: chunked\r\n" in raw.body
    result = yield awaited(fetch(reactor, f"http://127.0.0.1:{port}/chunked"))
    assert result.body == b"hello, chunked world"


@pytest_twisted.inlineCallbacks
def test_fetch_large_to_file_with_progress(
    http_server: tuple[int, Silent],
) -> Generator[Deferred[Any], Any, None]:
    port, _ = http_server
    output = io.BytesIO()
    progress: list[tuple[int, int | None]] = []
    result = yield awaited(
        fetch(
            reactor,
            f"http://127.0.0.1:{port}/large",
            output=output,
            on_progress=lambda got, total: progress.append((got, total)),
        )
    )
    assert result.body is None
    assert result.length == len(LARGE)
    assert output.getvalue() == LARGE
    assert progress[-1] == (len(LARGE), len(LARGE))
    assert len(progress) > 1


@pytest_twisted.inlineCallbacks
def test_fetch_404(http_server: tuple[int, Silent]) -> Generator[Deferred[Any], Any, None]:
    port, _ = http_server
    result = yield awaited(fetch(reactor, f"http://127.0.0.1:{port}/missing"))
    assert result.status == 404
    assert b"No Such Resource" in result.body


@pytest_twisted.inlineCallbacks
def test_fetch_raw_keeps_everything(
    http_server: tuple[int, Silent],
) -> Generator[Deferred[Any], Any, None]:
    """
    C{--raw} gets the bytes on the wire: status line, headers, and the
    chunked framing undecoded.
    """
    port, _ = http_server
    result = yield awaited(fetch_raw(reactor, f"http://127.0.0.1:{port}/chunked"))
    assert result.body.startswith(b"HTTP/1.1 200 OK\r\n")
    head, _, body = result.body.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"7\r\nhello, \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n"
    assert result.length == len(result.body)


@pytest_twisted.inlineCallbacks
def test_fetch_timeout(http_server: tuple[int, Silent]) -> Generator[Deferred[Any], Any, None]:
    port, silent = http_server
    with pytest.raises(FetchError, match=r"timed out after 0\.3 s"):
        yield awaited(fetch(reactor, f"http://127.0.0.1:{port}/silent", timeout=0.3))
    with pytest.raises(FetchError, match="timed out"):
        yield awaited(fetch_raw(reactor, f"http://127.0.0.1:{port}/silent", timeout=0.3))
    # Both requests were sent; on a loaded machine the server may read the
    # second one only after the client has given up on it.
    for _ in range(50):
        if len(silent.requests) == 2:
            break
        yield deferLater(reactor, 0.05)
    assert len(silent.requests) == 2


@pytest_twisted.inlineCallbacks
def test_fetch_refused() -> None:  # type: ignore[misc]
    import socket

    from twisted.internet.error import ConnectionRefusedError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with pytest.raises(Exception) as caught:
        yield awaited(fetch(reactor, f"http://127.0.0.1:{free}/"))
    reasons = getattr(caught.value, "reasons", None)
    refused = reasons[0].value if reasons else caught.value
    assert isinstance(refused, ConnectionRefusedError)


# https -----------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_fetch_https(https_server: tuple[int, Path]) -> Generator[Deferred[Any], Any, None]:
    port, ca_file = https_server
    trust = trust_root_from_pem(ca_file)
    result = yield awaited(fetch(reactor, f"https://localhost:{port}/chunked", trust_root=trust))
    assert result.body == b"hello, chunked world"
    raw = yield awaited(fetch_raw(reactor, f"https://localhost:{port}/plain", trust_root=trust))
    assert raw.body.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.body.endswith(b"\r\n\r\nhello, plain world")


@pytest_twisted.inlineCallbacks
def test_fetch_https_untrusted(
    https_server: tuple[int, Path],
) -> Generator[Deferred[Any], Any, None]:
    """
    Without the test authority, the certificate is refused.
    """
    from OpenSSL import SSL

    port, _ = https_server
    with pytest.raises(Exception) as caught:
        yield awaited(fetch(reactor, f"https://localhost:{port}/plain"))
    reasons = getattr(caught.value, "reasons", None)
    assert reasons and isinstance(reasons[0].value, SSL.Error)


def test_trust_root_needs_a_certificate(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"not a certificate\n")
    with pytest.raises(ValueError, match="no PEM certificate"):
        trust_root_from_pem(empty)


# progress --------------------------------------------------------------------------


def test_progress_bar_only_for_large_bodies_and_rate_limited() -> None:
    clock = Clock()
    stream = io.StringIO()
    bar = ProgressBar(stream, clock, threshold=1000, rate=10)
    bar.update(500, 900)
    bar.finish()
    assert stream.getvalue() == ""
    bar.update(200, 4000)
    assert stream.getvalue().startswith("\r[#-----------------------------]   5% 200 B of 3.9 KiB")
    drawn = stream.getvalue()
    bar.update(400, 4000)
    assert stream.getvalue() == drawn
    clock.advance(0.2)
    bar.update(4000, 4000)
    assert stream.getvalue().rsplit("\r", 1)[1].startswith("[" + "#" * 30 + "] 100%")
    bar.finish()
    assert stream.getvalue().endswith("\n")


def test_progress_bar_unknown_total() -> None:
    clock = Clock()
    stream = io.StringIO()
    bar = ProgressBar(stream, clock, threshold=1000)
    bar.update(999, None)
    assert stream.getvalue() == ""
    clock.advance(1)
    bar.update(2048, None)
    assert stream.getvalue() == "\r2.0 KiB 2.0 KiB/s"
