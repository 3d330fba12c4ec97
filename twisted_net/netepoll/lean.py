"""
Start-up without what the server will not use, for a smaller resident size.

Twisted imports pyOpenSSL whenever it is installed: C{twisted.internet.tcp}
for its C{startTLS} mixins (upstream ticket 6004), C{posixbase} for
C{listenSSL}, C{endpoints} for C{ssl:}.  Loading it brings in
C{cryptography}'s Rust extension, C{service_identity} and
C{twisted.internet._sslverify}, paid by every server, though only one with a
TLS endpoint uses any of it (the figures: docs/PERFORMANCE.md, section
"OpenSSL-free start-up (lean)").

Twisted supports running without pyOpenSSL (it is the optional C{tls}
extra): each of those imports is guarded, and without it the TCP transport
simply has no C{startTLS}.  L{import_twisted}, called by each entry point
(C{twisted_net.tap}'s options, a C{--workers} worker) before anything else
imports Twisted's reactor, installs the reactor and imports Twisted's
endpoint parsers within L{openssl_hidden}, when the caller found that no
endpoint of this server can need TLS
(L{twisted_net.server.endpoints.tls_unneeded}).  pyOpenSSL is importable
again afterwards (Twisted's modules keep their TLS-less setup, which nothing
in such a server asks for).

Every module imported before that call must leave C{twisted.internet.tcp}
unimported; C{tests/netepoll/test_lean.py} checks that the entry points do.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["import_twisted", "openssl_hidden"]


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


def import_twisted(hide: bool, install_reactor: Callable[[], object]) -> Any:
    """
    Install the reactor with C{install_reactor} (which may keep one already
    installed) and import Twisted's endpoint parsers, without pyOpenSSL if
    C{hide} (see L{openssl_hidden}).

    @return: the installed reactor.
    """
    with openssl_hidden(hide):
        install_reactor()
        importlib.import_module("twisted.internet.endpoints")
        from twisted.internet import reactor
    return reactor
