"""
What the kernel counts about the server's sockets and no counter of ours can
see: datagrams dropped because a UDP socket's receive buffer was full, and
connections dropped because a listening socket's accept queue was full.

Both are read from C{/proc} when asked (at a C{/metrics} scrape), so they cost
nothing per datagram or per connection.  Off Linux, or where C{/proc/net} is
not readable, every reading is C{None}: unknown, never a made-up zero.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

__all__ = [
    "DEFAULT_BACKLOG",
    "default_backlog",
    "listen_overflows",
    "socket_inode",
    "udp_drops",
]

DEFAULT_BACKLOG = 1024
"""The listen backlog used where the system's own ceiling cannot be read."""

_SOMAXCONN = Path("/proc/sys/net/core/somaxconn")
_UDP_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))
_NETSTAT = Path("/proc/net/netstat")


def default_backlog(somaxconn: Path = _SOMAXCONN) -> int:
    """
    The listen backlog for a public server: the system's ceiling
    (C{net.core.somaxconn}, which the kernel applies to any larger value
    anyway), or L{DEFAULT_BACKLOG} where it cannot be read.

    Twisted's own default, 50, is too small for a server that speaks first:
    in a burst of connects the kernel drops handshakes beyond it, and those
    clients wait for a greeting that never comes.
    """
    try:
        value = int(somaxconn.read_text().strip())
    except (OSError, ValueError):
        return DEFAULT_BACKLOG
    return value if value > 0 else DEFAULT_BACKLOG


def socket_inode(descriptor: int) -> int | None:
    """
    The inode number by which C{/proc/net/*} tables name the socket open on
    C{descriptor}, or C{None} if it cannot be read.
    """
    try:
        return os.fstat(descriptor).st_ino
    except OSError:
        return None


def udp_drops(inodes: Iterable[int], tables: Iterable[Path] = _UDP_TABLES) -> int | None:
    """
    How many datagrams the kernel dropped for these UDP sockets (their
    C{drops} column in C{/proc/net/udp} and C{/proc/net/udp6}), summed.

    @param inodes: the sockets' inode numbers (L{socket_inode}).
    @return: the sum, or C{None} when no table could be read or none of the
        sockets was found in them.
    """
    wanted = set(inodes)
    total = 0
    found = False
    for table in tables:
        try:
            lines = table.read_text().splitlines()
        except OSError:
            continue
        for line in lines[1:]:
            fields = line.split()
            # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            if len(fields) < 13 or not fields[9].isdigit():
                continue
            if int(fields[9]) in wanted and fields[12].isdigit():
                total += int(fields[12])
                found = True
    return total if found else None


def listen_overflows(netstat: Path = _NETSTAT) -> int | None:
    """
    How many times a listening TCP socket's accept queue overflowed in this
    network namespace (C{TcpExt: ListenOverflows} of C{/proc/net/netstat}),
    or C{None} where it cannot be read.  The kernel counts these for the
    whole namespace, not per socket.
    """
    try:
        lines = netstat.read_text().splitlines()
    except OSError:
        return None
    for names, values in pairwise(lines):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            value = table.get("ListenOverflows", "")
            return int(value) if value.isdigit() else None
    return None
