"""
Prometheus metrics over HTTP, read from the server's L{Counters}.

The protocols never call into C{prometheus_client}: they add to plain
integers in L{Counters}, and L{CountersCollector} turns a snapshot of them
into metric families only when Prometheus scrapes C{/metrics}.  The page is
served by Twisted's web server (C{prometheus_client.twisted.MetricsResource},
with a private registry so that nothing else leaks into it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.web import http
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from twisted_net.address import format_address
from twisted_net.logs import NamedLogger
from twisted_net.server import kernel
from twisted_net.server.counters import LATENCY_BOUNDS, Counters
from twisted_net.server.endpoints import with_backlog
from twisted_net.server.refusals import REFUSALS, RefusalLog
from twisted_net.server.service import ListeningService, listen_at_once

__all__ = [
    "KNOWN_REFUSALS",
    "PREFIX",
    "CountersCollector",
    "MetricsService",
    "metrics_registry",
    "metrics_site",
]

PREFIX = "twisted_net"
"""The prefix of every metric name."""

KNOWN_REFUSALS = tuple(REFUSALS)
"""Refusal reasons exported from the start (at 0), so that rates and alerts
work before the first refusal: every reason of the registry
(L{twisted_net.server.refusals.REFUSALS}); any other reason (a UDP send
error) appears when it occurs."""

_COUNTERS = {
    "connections_total": "TCP connections admitted since start.",
    "messages_answered": "TCP messages answered.",
    "datagrams_answered": "UDP datagrams answered.",
    "bytes_in": "Bytes received (TCP and UDP payload).",
    "bytes_out": "Bytes sent (TCP and UDP payload).",
    "udp_send_errors": "UDP replies the kernel refused to send.",
    "health_checks": "Load balancer health checks (PROXY LOCAL/UNKNOWN headers) closed quietly.",
}
_NAMES = {
    "connections_total": "connections",
    "bytes_in": "received_bytes",
    "bytes_out": "sent_bytes",
}
_GAUGES = {
    "connections_open": "TCP connections open now.",
}


class CountersCollector:
    """
    A C{prometheus_client} collector over one L{Counters}.

    Runs in a thread of the reactor's thread pool when scraped (that is how
    C{MetricsResource} serves); it only copies containers and reads
    integers, which is safe while the reactor thread adds to them.  Integer
    counters this module does not know yet are exported as gauges named
    after their attribute, so that new counters show up without a change
    here.

    @ivar udp_descriptors: gives the descriptors of the server's UDP sockets,
        whose kernel drops are exported (read from C{/proc} when scraped;
        see L{twisted_net.server.kernel}).
    """

    def __init__(
        self, counters: Counters, udp_descriptors: Callable[[], Iterable[int]] = tuple
    ) -> None:
        self.counters = counters
        self.udp_descriptors = udp_descriptors

    def collect(self) -> Iterator[Metric]:
        """
        Every metric, read now.
        """
        counters = self.counters
        # dict() copies in one step under the GIL, so the reactor thread may
        # go on counting (even add a counter) while this thread reads.
        values = {
            name: value
            for name, value in dict(vars(counters)).items()
            if isinstance(value, int) and not isinstance(value, bool)
        }
        refusals: dict[str, int] = dict.fromkeys(KNOWN_REFUSALS, 0)
        refusals.update(dict(counters.refusals))
        for name, documentation in _GAUGES.items():
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=values.pop(name, 0))
        for name, documentation in _COUNTERS.items():
            yield CounterMetricFamily(
                f"{PREFIX}_{_NAMES.get(name, name)}", documentation, value=values.pop(name, 0)
            )
        refused = CounterMetricFamily(
            f"{PREFIX}_refusals",
            "Connections, messages and datagrams refused, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(refusals.items()):
            refused.add_metric([reason], count)
        yield refused
        yield self._latency(counters)
        yield from self._kernel()
        for name, value in sorted(values.items()):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", f"Counter {name!r}.", value=value)

    def _kernel(self) -> Iterator[Metric]:
        """
        What the kernel dropped before this server could see it; a reading
        the kernel does not give (off Linux) is left out, not shown as 0.
        """
        inodes = [kernel.socket_inode(descriptor) for descriptor in self.udp_descriptors()]
        drops = kernel.udp_drops(inode for inode in inodes if inode is not None)
        if drops is not None:
            yield CounterMetricFamily(
                f"{PREFIX}_udp_receive_drops",
                "UDP datagrams the kernel dropped because a receive buffer of this "
                "server was full (its sockets' drops in /proc/net/udp, udp6).",
                value=drops,
            )
        overflows = kernel.listen_overflows()
        if overflows is not None:
            yield CounterMetricFamily(
                f"{PREFIX}_listen_overflows",
                "Connections the kernel dropped because a listening socket's accept "
                "queue was full, for every listener of this network namespace "
                "(TcpExt ListenOverflows in /proc/net/netstat).",
                value=overflows,
            )

    def _latency(self, counters: Counters) -> HistogramMetricFamily:
        counts = list(counters.latency_buckets)
        total = counters.latency_sum
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(str, LATENCY_BOUNDS), "+Inf"), counts, strict=True):
            running += count
            buckets.append((bound, running))
        return HistogramMetricFamily(
            f"{PREFIX}_reply_latency_seconds",
            "Seconds from a message's arrival to its reply's write, for delayed "
            "replies (--delay); immediate replies are written within the read.",
            buckets=buckets,
            sum_value=total,
        )


def metrics_registry(
    counters: Counters, udp_descriptors: Callable[[], Iterable[int]] = tuple
) -> CollectorRegistry:
    """
    A private registry holding only the collector of C{counters} (and of the
    kernel's drops on C{udp_descriptors}).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CountersCollector(counters, udp_descriptors))
    return registry


class _QuietSite(Site):
    """
    A site that does not log every scrape.
    """

    noisy = False

    def log(self, request: http.Request) -> None:
        """
        No access log: a scrape every few seconds is not news.
        """


def metrics_site(counters: Counters, udp_descriptors: Callable[[], Iterable[int]] = tuple) -> Site:
    """
    The web site: C{/metrics} in Prometheus text format, C{/} a pointer to it.
    """
    from prometheus_client.twisted import MetricsResource

    root = _Root()
    registry = metrics_registry(counters, udp_descriptors)
    root.putChild(b"metrics", MetricsResource(registry=registry))
    root.putChild(b"", _Index())
    return _QuietSite(root)


class _Root(Resource):
    """
    The site's root: its children, and a plain 404 for anything else.
    """

    def getChild(self, path: bytes, request: http.Request) -> IResource:
        return notFound()


class _Index(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"twisted-net: metrics at /metrics\n"


class MetricsService(ListeningService):
    """
    Serve the metrics site on a Twisted server endpoint string (such as
    C{tcp:9100:interface=127.0.0.1}); like the TCP listeners, listening
    happens at once in L{startService}, so a port in use is reported there.
    """

    log = NamedLogger("twisted_net.metrics")

    def __init__(
        self,
        description: str,
        counters: Counters,
        reactor: Any,
        udp_descriptors: Callable[[], Iterable[int]] = tuple,
    ) -> None:
        self.description = description
        self.counters = counters
        self.reactor = reactor
        self.udp_descriptors = udp_descriptors
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        # Guarded like the TCP listeners, but serving through its reserve
        # descriptor when descriptors run out: operators need the page most
        # at exactly that moment.  Imported here: it imports
        # twisted.internet.tcp (see docs/PERFORMANCE.md, "OpenSSL-free start-up").
        from twisted_net.server.accepting import GuardedListeningReactor

        guarded = GuardedListeningReactor(
            self.reactor,
            RefusalLog(self.counters, self.reactor),
            None,
            serve_when_exhausted=True,
        )
        endpoint = serverFromString(guarded, with_backlog(self.description))
        site = metrics_site(self.counters, self.udp_descriptors)
        self.port = outcome = listen_at_once(endpoint, site, self.description)
        super().startService()
        self.log.info(
            "Serving metrics on {endpoint} at http://{address}/metrics",
            event="metrics_listening",
            transport="http",
            endpoint=self.description,
            address=format_address(outcome.getHost()),
        )
