"""
Tests for L{twisted_net.server.endpoints}: the one reader of C{--listen}
strings (their type, whether they can need TLS, the gated endpoint, the
socket a C{--workers} listener binds).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trustme
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor

from twisted_net.server import endpoints
from twisted_net.server.endpoints import (
    ListenRequest,
    NotShareableError,
    describe_listener,
    endpoint_error,
    server_endpoint,
    with_backlog,
)
from twisted_net.server.gate import GatedEndpoint, HandshakeGateFactory
from twisted_net.server.kernel import default_backlog
from twisted_net.server.proxy import ProxyHeaderFactory


@pytest.mark.parametrize(
    ("description", "kind"),
    [
        ("tcp:9999:interface=127.0.0.1", "tcp"),
        (r"tcp6:9999:interface=\:\:1", "tcp6"),
        ("unix:/run/net.sock", "unix"),
        ("systemd:domain=INET:index=0", "systemd"),
        ("ssl:9443:privateKey=key.pem", "ssl"),
        ("haproxy:tcp:9999", "tcp"),
        ("haproxy:ssl:9443:privateKey=key.pem", "ssl"),
        ("haproxy:haproxy:tcp:1", "tcp"),
        ("haproxy", "haproxy"),
        (r"tcp\:x:1", r"tcp\:x"),
        ("9999", "9999"),
        ("le:/certs:tcp:443", "le"),
    ],
)
def test_endpoint_type(description: str, kind: str) -> None:
    """
    The type is the text before the first unescaped colon, looked up
    through C{haproxy:} prefixes.
    """
    assert endpoints.endpoint_type(description) == kind


@pytest.mark.parametrize(
    ("descriptions", "unneeded"),
    [
        (["tcp:0"], True),
        (["tcp:0", r"tcp6:0:interface=\:\:1", "unix:/x", "systemd:domain=INET:index=0"], True),
        (["haproxy:tcp:0"], True),
        ([], True),
        (["tcp:0", "ssl:0:privateKey=k.pem"], False),
        (["haproxy:ssl:0:privateKey=k.pem"], False),
        (["le:/certs:tcp:443"], False),
        (["TCP:0"], False),
        (["9999"], False),
    ],
)
def test_tls_unneeded(descriptions: list[str], unneeded: bool) -> None:
    """
    Only Twisted's plain built-in endpoint types count as not needing TLS;
    anything else (C{ssl:}, endpoint plugins, what C{serverFromString}
    would not even parse) keeps pyOpenSSL available.
    """
    assert endpoints.tls_unneeded(descriptions) is unneeded


def test_server_endpoint_routes_haproxy_prefix() -> None:
    """
    C{haproxy:INNER} gives the header-first endpoint; C{ssl:} the
    handshake-first one; other strings are Twisted's own endpoints.
    """
    reactor = MemoryReactor()
    proxied = server_endpoint(reactor, "haproxy:tcp:0")
    assert isinstance(proxied, GatedEndpoint) and proxied.gate is ProxyHeaderFactory
    assert not isinstance(server_endpoint(reactor, "tcp:0"), GatedEndpoint)


def test_server_endpoint_gates_tls(tmp_path: Path) -> None:
    """
    C{ssl:} endpoints hold the greeting protocol back until the handshake.
    """
    cert = trustme.CA().issue_cert("localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "both.pem"))
    endpoint = server_endpoint(MemoryReactor(), f"ssl:0:privateKey={tmp_path / 'both.pem'}")
    assert isinstance(endpoint, GatedEndpoint) and endpoint.gate is HandshakeGateFactory


@pytest.mark.parametrize(
    "description, expected",
    [
        (
            "tcp:0:interface=127.0.0.1",
            ListenRequest(socket.SOCK_STREAM, "127.0.0.1", 0, default_backlog()),
        ),
        ("tcp:9999:backlog=7", ListenRequest(socket.SOCK_STREAM, "", 9999, 7)),
        (
            "tcp6:0:interface=\\:\\:1",
            ListenRequest(socket.SOCK_STREAM, "::1", 0, default_backlog()),
        ),
        ("haproxy:tcp:8080", ListenRequest(socket.SOCK_STREAM, "", 8080, default_backlog())),
        ("haproxy:tcp:8080:backlog=9", ListenRequest(socket.SOCK_STREAM, "", 8080, 9)),
    ],
)
def test_describe_listener(description: str, expected: ListenRequest) -> None:
    assert describe_listener(description) == expected


def test_unix_endpoint_is_not_shareable(tmp_path: Any) -> None:
    with pytest.raises(NotShareableError, match="use tcp:"):
        describe_listener(f"unix:{tmp_path}/net.sock")


@pytest.mark.parametrize(
    ("description", "gated", "words"),
    [
        ("bogus:1", True, "Unknown endpoint type: 'bogus'"),
        ("haproxy:bogus:1", True, "Unknown endpoint type: 'bogus'"),
        ("tcp:notaport", False, "port 'notaport' is not a number"),
        ("tcp:99999", True, "port must be 0 to 65535"),
        ("tcp6:70000:interface=\\:\\:1", False, "port must be 0 to 65535"),
        ("haproxy:tcp:99999", True, "port must be 0 to 65535"),
        ("ssl:99999:privateKey=key.pem", True, "port must be 0 to 65535"),
        ("tcp:port=99999", True, "port must be 0 to 65535"),
        ("tcp:0:backlog=many", True, "'many' is not a number"),
        ("tcp:0:bogus=1", True, "unknown option 'bogus'"),
        ("tcp", True, "missing port"),
        (
            "tcp6:0:interface=::1",
            True,
            "interface given twice (escape each ':' of an IPv6 address, as in "
            "'tcp6:0:interface=\\:\\:1', quoted for the shell)",
        ),
    ],
)
def test_endpoint_error(description: str, gated: bool, words: str) -> None:
    """
    A string that is no endpoint, or whose port is out of range, gets a
    reason in the user's words, never Python's.
    """
    error = endpoint_error(MemoryReactor(), description, gated=gated)
    assert error is not None and words in error
    for python in ("invalid literal", "argument", "()", "Error"):
        assert python not in error


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("tcp:9999", "tcp:9999:backlog=1234"),
        ("tcp:9999:interface=127.0.0.1", "tcp:9999:interface=127.0.0.1:backlog=1234"),
        ("tcp6:9999:interface=\\:\\:1", "tcp6:9999:interface=\\:\\:1:backlog=1234"),
        ("ssl:9443:privateKey=k.pem", "ssl:9443:privateKey=k.pem:backlog=1234"),
        ("unix:/run/net.sock", "unix:/run/net.sock:backlog=1234"),
        ("haproxy:tcp:9999", "haproxy:tcp:9999:backlog=1234"),
        ("haproxy:haproxy:tcp6:1", "haproxy:haproxy:tcp6:1:backlog=1234"),
        # The string's own backlog wins, by keyword or by position.
        ("tcp:9999:backlog=7", "tcp:9999:backlog=7"),
        ("haproxy:tcp:9999:backlog=7", "haproxy:tcp:9999:backlog=7"),
        ("tcp:9999:127.0.0.1:7", "tcp:9999:127.0.0.1:7"),
        ("tcp6:9999:7", "tcp6:9999:7"),
        ("ssl:9443:k.pem:c.pem:m:127.0.0.1:7", "ssl:9443:k.pem:c.pem:m:127.0.0.1:7"),
        # An escaped '=' or ':' is no keyword and no field.
        ("unix:/run/a\\=b\\:c", "unix:/run/a\\=b\\:c:backlog=1234"),
        # Types without a backlog, a string without arguments, a dangling escape.
        ("systemd:domain=INET:index=0", "systemd:domain=INET:index=0"),
        ("bogus:1", "bogus:1"),
        ("tcp", "tcp"),
        ("tcp:0:a\\", "tcp:0:a\\"),
    ],
)
def test_with_backlog(description: str, expected: str) -> None:
    assert with_backlog(description, 1234) == expected


def test_with_backlog_defaults_to_the_systems_ceiling() -> None:
    assert with_backlog("tcp:0") == f"tcp:0:backlog={default_backlog()}"


def test_server_endpoint_listens_with_the_default_backlog() -> None:
    """
    Twisted's default of 50 is replaced, behind C{haproxy:} too; an
    explicit C{backlog=} wins.
    """
    reactor = MemoryReactor()
    for description in ("tcp:0", "haproxy:tcp:0", "tcp:0:backlog=7"):
        server_endpoint(reactor, description).listen(Factory())
    assert [backlog for _, _, backlog, _ in reactor.tcpServers] == [
        default_backlog(),
        default_backlog(),
        7,
    ]


@pytest.mark.parametrize("description", ["tcp:0", "haproxy:tcp:0", "unix:/tmp/x.sock"])
def test_endpoint_error_none_for_endpoints(description: str) -> None:
    assert endpoint_error(MemoryReactor(), description) is None
    assert endpoint_error(MemoryReactor(), description, gated=False) is None
