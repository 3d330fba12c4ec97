"""
Start-up without what the server will not use, for a smaller resident size.

Twisted imports pyOpenSSL whenever it is installed: C{twisted.internet.tcp}
for its C{startTLS} mixins (upstream ticket 6004), C{posixbase} for
C{listenSSL}, C{endpoints} for C{ssl:}.  Loading it brings in
C{cryptography}'s Rust extension, C{service_identity} and
C{twisted.internet._sslverify}: about 13 MB of a 48 MB idle C{twist net},
paid by every server, though only one with a TLS endpoint uses any of it.

Twisted supports running without pyOpenSSL (it is the optional C{tls}
extra): each of those imports is guarded, and without it the TCP transport
simply has no C{startTLS}.  L{openssl_hidden} makes pyOpenSSL look absent
while the reactor and the endpoint parsers are imported, and only when
L{tls_unneeded} says no endpoint of this server can need it.  pyOpenSSL is
importable again afterwards (Twisted's modules keep their TLS-less setup,
which nothing in such a server asks for).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["PLAIN_ENDPOINT_TYPES", "endpoint_type", "openssl_hidden", "tls_unneeded"]

PLAIN_ENDPOINT_TYPES = frozenset({"tcp", "tcp6", "unix", "systemd"})
"""Twisted's built-in server endpoint types that never use TLS.  Anything
else (C{ssl:}, an endpoint plugin such as C{le:}) may need pyOpenSSL."""

_PROXY_PREFIX = "haproxy"


def endpoint_type(description: str) -> str:
    """
    The type of a server endpoint string, as C{serverFromString} reads it
    (the text before the first colon that is not escaped with a backslash),
    looking through C{haproxy:} prefixes to the endpoint they wrap.
    """
    while True:
        kind, rest = _first_field(description)
        if kind != _PROXY_PREFIX or rest is None:
            return kind
        description = rest


def _first_field(description: str) -> tuple[str, str | None]:
    """
    Split an endpoint string at its first unescaped colon.

    @return: the text before it (backslash escapes kept, so that an escaped
        type never matches a plain one), and the rest, or C{None} without
        a colon.
    """
    escaped = False
    for index, character in enumerate(description):
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ":":
            return description[:index], description[index + 1 :]
    return description, None


def tls_unneeded(descriptions: Iterable[str]) -> bool:
    """
    Whether none of these server endpoint strings can need TLS: each one is
    of a type in L{PLAIN_ENDPOINT_TYPES} (behind any C{haproxy:}).
    """
    return all(endpoint_type(description) in PLAIN_ENDPOINT_TYPES for description in descriptions)


@contextmanager
def openssl_hidden(hide: bool = True) -> Iterator[bool]:
    """
    Within this block, importing pyOpenSSL fails as if it were not
    installed, so that Twisted modules imported here set themselves up
    without TLS.

    Nothing is hidden (the block yields C{False}) when C{hide} is false, or
    when it would change nothing or be inconsistent: pyOpenSSL already
    imported, or C{twisted.internet.tcp} already imported with it.

    @return: a context manager yielding whether pyOpenSSL was hidden.
    """
    if not hide or "OpenSSL" in sys.modules or "twisted.internet.tcp" in sys.modules:
        yield False
        return
    # A None entry makes the import system raise ModuleNotFoundError (an
    # ImportError) for the package and all its submodules, which is what
    # Twisted's guards catch.
    sys.modules["OpenSSL"] = None  # type: ignore[assignment]
    try:
        yield True
    finally:
        if "OpenSSL" in sys.modules and sys.modules["OpenSSL"] is None:
            del sys.modules["OpenSSL"]
