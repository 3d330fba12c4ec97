"""
C{twisted-net bench}: measure a running greeting server.

The same scenarios as the repository's C{benchmarks/run.py} (lockstep,
pipeline, churn, UDP), against any server given with C{--connect}; live
progress on stderr, a table on stdout, C{--json FILE} for a result file.

The load comes from a small epoll loop in pure Python (no Twisted: the tool
must not share the server's costs or bugs).  One Python process tops out
far below what a fast server can answer (tens of thousands of lockstep
messages a second on one core; see the README's performance section), so
its figures are a floor, not a ceiling.  For exact comparisons, point
C{--driver} at the C driver built by C{benchmarks/run.py}
(C{benchmarks/build/driver}): the result format is the same.

All the load comes from one host, so a server with its production limits
(C{twist net}'s C{--udp-rate 200} datagrams/s and C{--max-per-peer 100}
connections per host) refuses part of it: benchmark a server started with
C{--udp-rate 0 --max-per-peer 0}.  A run whose errors look like those limits
says so on stderr.
"""

from twisted_net.cli.bench.command import configure_parser, main, run
from twisted_net.cli.bench.histogram import Histogram
from twisted_net.cli.bench.load import SCENARIOS, LoadRun
from twisted_net.cli.bench.report import format_table, limit_hints

__all__ = [
    "SCENARIOS",
    "Histogram",
    "LoadRun",
    "configure_parser",
    "format_table",
    "limit_hints",
    "main",
    "run",
]
