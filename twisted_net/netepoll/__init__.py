"""
The C{netepoll} reactor (C{twist --reactor netepoll}): Twisted's epoll
reactor with a leaner per-message path, and the only part of twisted-net that
touches Twisted's private internals.

L{install} checks those internals first (L{twisted_net.netepoll.check}) and
falls back to Twisted's own epoll reactor when one moved, so a Twisted whose
internals changed still serves.  Importing this package imports nothing of
Twisted's reactor: the OpenSSL-free start-up (L{twisted_net.netepoll.lean})
must come first.
"""

from __future__ import annotations

import contextlib

from twisted.logger import Logger

__all__ = ["install"]

_log = Logger(namespace="twisted_net.netepoll")


def install() -> None:
    """
    Install L{twisted_net.netepoll.reactor.NetReactor} as the global reactor
    if every Twisted internal it relies on is there; otherwise log one
    warning (event C{netepoll_fallback}, naming what is missing) and install
    Twisted's epoll reactor.

    @raise ImportError: where epoll itself is missing (not Linux): the
        caller keeps Twisted's default reactor.
    """
    from twisted.internet import epollreactor
    from twisted.internet.main import installReactor

    from twisted_net.netepoll import check

    missing = check.problems()
    if not missing:
        try:
            from twisted_net.netepoll.reactor import NetReactor

            reactor = NetReactor()
        except Exception as error:
            missing = [f"twisted_net.netepoll.reactor: {type(error).__name__}: {error}"]
        else:
            missing = check.instance_problems(reactor)
            if not missing:
                installReactor(reactor)
                return
            _dispose(reactor)
    _log.warn(
        "netepoll cannot run on this Twisted ({missing}); using Twisted's epoll reactor",
        event="netepoll_fallback",
        missing="; ".join(missing),
    )
    epollreactor.install()


def _dispose(reactor: object) -> None:
    """
    Close what a reactor that will not be installed has opened.
    """
    for name in ("_poller", "waker"):
        closing = getattr(getattr(reactor, name, None), "close", None)
        if closing is not None:
            with contextlib.suppress(Exception):
                closing()
