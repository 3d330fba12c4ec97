"""
The tutorial's HTTP client, on Twisted: C{GET} a URL over http or https with
C{Connection: close}, and read until the server closes.

L{fetch} parses the response with Twisted's own HTTP client
(C{twisted.web.client.Agent}), so chunked bodies are decoded; L{fetch_raw}
sends the tutorial's request bytes as written and hands back every byte
received, untouched.  Both stream the body (to a file object, or collect it)
and give up after C{timeout} seconds without progress.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from typing import Protocol as TypingProtocol

from OpenSSL.crypto import Error as OpenSSLCryptoError
from twisted.internet import ssl
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import URI, Agent, BrowserLikePolicyForHTTPS, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse

from twisted_net.address import parse_host_port
from twisted_net.client.errors import describe_tls_error

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

__all__ = [
    "BinaryOutput",
    "FetchError",
    "FetchResult",
    "fetch",
    "fetch_raw",
    "parse_url",
    "raw_request",
    "trust_root_from_pem",
]

_T = TypeVar("_T")

ProgressCallback = Callable[[int, "int | None"], None]
"""Called with C{(bytes received so far, total or None)} as the body arrives."""


class BinaryOutput(TypingProtocol):
    """
    Where a body goes: anything with C{write(bytes)}, such as a file
    opened C{"wb"} or C{sys.stdout.buffer}.
    """

    def write(self, data: bytes, /) -> object: ...


class FetchError(Exception):
    """
    A fetch that could not complete: bad URL, timeout, connection lost.
    """


@dataclass
class FetchResult:
    """
    One HTTP response.

    @ivar version: the protocol of the status line, e.g. C{b"HTTP/1.1"}.
    @ivar status: the status code (C{0} for L{fetch_raw}, which does not
        parse the response).
    @ivar phrase: the reason phrase, e.g. C{b"OK"}.
    @ivar headers: the header lines, as C{(name, value)} pairs.
    @ivar body: the body, when no output file was given.
    @ivar length: bytes of body received (all bytes, for L{fetch_raw}).
    """

    url: str
    version: bytes = b""
    status: int = 0
    phrase: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes | None = None
    length: int = 0

    @property
    def status_line(self) -> bytes:
        """
        The status line as the server would have sent it, without C{CRLF}.
        """
        return b"%s %d %s" % (self.version, self.status, self.phrase)


@dataclass(frozen=True)
class _Target:
    scheme: bytes
    host: bytes
    port: int
    path: bytes
    url: bytes


def parse_url(url: str | bytes) -> _Target:
    """
    Check that C{url} is an absolute http or https URL; C{HOST:PORT[/PATH]}
    (the address form of the other commands) means C{http://HOST:PORT/PATH}.

    @raise ValueError: with a message fit for the user.
    """
    raw = url.encode("utf-8") if isinstance(url, str) else url
    shown = raw.decode("utf-8", "backslashreplace")
    if b"://" not in raw:
        try:
            parse_host_port(shown.split("/", 1)[0])
        except ValueError:
            raise ValueError(
                f"bad URL {shown!r}: expected http://HOST[:PORT]/PATH, https://... "
                "or HOST:PORT[/PATH]"
            ) from None
        raw = b"http://" + raw
    try:
        uri = URI.fromBytes(raw)
    except ValueError as error:  # e.g. "Invalid IPv6 URL", from urllib
        raise ValueError(f"bad URL {shown!r}: {error}") from None
    if uri.scheme not in (b"http", b"https"):
        scheme = uri.scheme.decode("ascii", "backslashreplace")
        raise ValueError(f"bad URL {shown!r}: scheme {scheme!r} is not http or https")
    if not uri.host:
        raise ValueError(f"bad URL {shown!r}: no host")
    if b":" in uri.host and not uri.netloc.startswith(b"["):
        port = uri.host.rsplit(b":", 1)[1].decode("ascii", "backslashreplace")
        raise ValueError(f"bad URL {shown!r}: port {port!r} is not a number")
    if not 0 < uri.port < 65536:
        raise ValueError(f"bad URL {shown!r}: port {uri.port} is out of range")
    if any(byte <= 0x20 or byte == 0x7F for byte in raw):
        raise ValueError(f"bad URL {shown!r}: spaces and control characters must be %-encoded")
    return _Target(uri.scheme, uri.host, uri.port, uri.originForm, raw)


def raw_request(url: str | bytes) -> bytes:
    """
    The tutorial's request for C{url}, byte for byte:
    C{GET /PATH HTTP/1.1}, C{Host}, C{Connection: close}.  The port goes
    into C{Host} only when it is not the scheme's default.
    """
    target = parse_url(url)
    host = target.host
    if b":" in host:
        host = b"[" + host + b"]"
    default_port = 443 if target.scheme == b"https" else 80
    if target.port != default_port:
        host += b":%d" % (target.port,)
    return b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (target.path, host)


def trust_root_from_pem(path: str | Path) -> IOpenSSLTrustRoot:
    """
    The certificate authorities in a PEM file (one or several certificates),
    to verify https servers with instead of the system's.

    @raise ValueError: when the file holds no certificate, or a damaged one.
    """
    text = Path(path).read_bytes()
    end = b"-----END CERTIFICATE-----"
    blocks = [block + end for block in text.split(end) if b"-----BEGIN CERTIFICATE-----" in block]
    if not blocks:
        raise ValueError(f"{path}: no PEM certificate found")
    try:
        certificates = [ssl.Certificate.loadPEM(block) for block in blocks]
    except OpenSSLCryptoError as error:
        raise ValueError(
            f"{path}: not a valid PEM certificate ({describe_tls_error(error)})"
        ) from None
    trust_root: IOpenSSLTrustRoot = ssl.trustRootFromCertificates(certificates)
    return trust_root


class _IdleTimeout:
    """
    Cancel a Deferred after C{seconds} without progress.
    """

    def __init__(self, clock: IReactorTime, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.expired = False
        self._call: IDelayedCall | None = None
        self._target: Deferred[Any] | None = None

    def watch(self, target: Deferred[_T]) -> Deferred[_T]:
        """
        Cancel C{target} when the time passes; stop when it fires.
        """
        self._target = target
        if self.seconds:
            self._call = self.clock.callLater(self.seconds, self._expire)

        def done(result: object) -> object:
            self.stop()
            if self.expired and isinstance(result, Failure):
                return Failure(FetchError(f"timed out after {self.seconds:g} s without progress"))
            return result

        return target.addBoth(done)

    def touch(self) -> None:
        """
        Progress: start counting again.
        """
        if self._call is not None and self._call.active():
            self._call.reset(self.seconds)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _expire(self) -> None:
        self._call = None
        self.expired = True
        if self._target is not None:
            self._target.cancel()


class _BodyReceiver(Protocol):
    """
    Receive a body: write it to C{output} or keep it, report progress.
    """

    def __init__(
        self,
        output: BinaryOutput | None,
        total: int | None,
        idle: _IdleTimeout,
        on_progress: ProgressCallback | None,
        request: bytes | None = None,
    ) -> None:
        self.output = output
        self.total = total
        self.idle = idle
        self.on_progress = on_progress
        self.request = request
        self.received = 0
        self.chunks: list[bytes] = []
        self.done: Deferred[int] = Deferred(self._cancel)

    def _cancel(self, _: Deferred[int]) -> None:
        transport = self.transport
        abort = getattr(transport, "abortConnection", None) or getattr(
            transport, "stopProducing", None
        )
        if abort is not None:
            abort()

    def connectionMade(self) -> None:
        if self.request is not None:
            self.transport.write(self.request)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        self.idle.touch()
        if self.output is not None:
            self.output.write(data)
        else:
            self.chunks.append(data)
        if self.on_progress is not None:
            self.on_progress(self.received, self.total)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.done.called:
            return
        if self.request is None:
            complete = reason.check(ResponseDone, PotentialDataLoss)
        else:
            complete = reason.check(ConnectionDone, ConnectionLost)
        if complete:
            self.done.callback(self.received)
        else:
            self.done.errback(reason)

    @property
    def body(self) -> bytes | None:
        return None if self.output is not None else b"".join(self.chunks)


def _watched(
    reactor: IReactorTime, timeout: float, run: Callable[[_IdleTimeout], Coroutine[Any, Any, _T]]
) -> Deferred[_T]:
    idle = _IdleTimeout(reactor, timeout)
    return idle.watch(ensureDeferred(run(idle)))


def fetch(
    reactor: Any,
    url: str | bytes,
    *,
    timeout: float = 30.0,
    output: BinaryOutput | None = None,
    trust_root: IOpenSSLTrustRoot | None = None,
    on_response: Callable[[FetchResult], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> Deferred[FetchResult]:
    """
    C{GET url} with C{Connection: close}; decode the body (chunked or not).

    Redirects are not followed: a 3xx response is the result.

    @param timeout: seconds allowed without progress (connecting, waiting
        for the response, between pieces of the body); C{0}: no limit.
    @param output: where to write the body as it arrives; without it, the
        body is collected into L{FetchResult.body}.
    @param trust_root: certificate authorities for https (default: the
        system's); see L{trust_root_from_pem}.
    @param on_response: called when the status and headers have arrived,
        before the body.
    @param on_progress: called as the body arrives.
    @return: fires with the L{FetchResult}; fails with L{FetchError} on
        timeout, or the connection's or TLS's error.
    @raise ValueError: for a URL that is not an absolute http(s) URL.
    """
    target = parse_url(url)
    shown = target.url.decode("utf-8", "backslashreplace")

    async def run(idle: _IdleTimeout) -> FetchResult:
        agent = Agent(
            reactor,
            contextFactory=BrowserLikePolicyForHTTPS(trust_root),
            connectTimeout=timeout or None,
        )
        response: IResponse = await agent.request(
            b"GET", target.url, Headers({b"User-Agent": [b"twisted-net"]})
        )
        idle.touch()
        version = b"%s/%d.%d" % response.version
        result = FetchResult(
            url=shown,
            version=version,
            status=response.code,
            phrase=response.phrase,
            headers=[
                (name, value)
                for name, values in response.headers.getAllRawHeaders()
                for value in values
            ],
        )
        if on_response is not None:
            on_response(replace(result))
        total = None if response.length is UNKNOWN_LENGTH else int(response.length)
        receiver = _BodyReceiver(output, total, idle, on_progress)
        response.deliverBody(receiver)
        result.length = await receiver.done
        result.body = receiver.body
        return result

    return _watched(reactor, timeout, run)


def fetch_raw(
    reactor: Any,
    url: str | bytes,
    *,
    timeout: float = 30.0,
    output: BinaryOutput | None = None,
    trust_root: IOpenSSLTrustRoot | None = None,
    on_progress: ProgressCallback | None = None,
) -> Deferred[FetchResult]:
    """
    The tutorial's client exactly: send L{raw_request} over TCP (TLS for
    https) and keep every byte received until the server closes, headers
    and all, unparsed.

    @return: fires with a L{FetchResult} whose C{body} (or C{output}) holds
        the whole response as received and whose other fields are empty.
    @raise ValueError: for a URL that is not an absolute http(s) URL.
    """
    target = parse_url(url)
    request = raw_request(url)
    shown = target.url.decode("utf-8", "backslashreplace")

    async def run(idle: _IdleTimeout) -> FetchResult:
        endpoint: Any = HostnameEndpoint(reactor, target.host, target.port, timeout or 30)
        if target.scheme == b"https":
            host = target.host.decode("ascii", "backslashreplace")
            endpoint = wrapClientTLS(ssl.optionsForClientTLS(host, trust_root), endpoint)
        receiver = _BodyReceiver(output, None, idle, on_progress, request=request)
        await connectProtocol(endpoint, receiver)
        idle.touch()
        length = await receiver.done
        return FetchResult(url=shown, body=receiver.body, length=length)

    return _watched(reactor, timeout, run)
