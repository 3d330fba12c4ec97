"""
The C{netepoll} reactor (C{twist --reactor netepoll}): Twisted's epoll
reactor with a leaner per-message path.  The only part of twisted-net that
touches Twisted's private internals.

Importing this package imports nothing of Twisted's reactor: the OpenSSL-free
start-up (L{twisted_net.netepoll.lean}) must come first.
"""

from __future__ import annotations


def install() -> None:
    """
    Install L{twisted_net.netepoll.reactor.NetReactor} as the global reactor.
    """
    from twisted_net.netepoll.reactor import install as install_reactor

    install_reactor()


__all__ = ["install"]
