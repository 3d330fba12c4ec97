"""
The C{netepoll} reactor plugin: C{twist --reactor netepoll net}.
"""

from twisted.application.reactors import Reactor

netepoll = Reactor(
    "netepoll",
    "twisted_net.netepoll",
    "epoll with write-through TCP sends (twisted-net's fast default).",
)
