"""
Tests for L{twisted_net.server.kernel}: the kernel's own counts of what it
dropped, read from C{/proc}, on real loopback sockets where Linux has them.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from twisted_net.server.kernel import (
    DEFAULT_BACKLOG,
    default_backlog,
    listen_overflows,
    socket_inode,
    udp_drops,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/net")


def test_default_backlog_is_the_systems_ceiling(tmp_path: Path) -> None:
    somaxconn = tmp_path / "somaxconn"
    somaxconn.write_text("4096\n")
    assert default_backlog(somaxconn) == 4096


@pytest.mark.parametrize("content", [None, "", "lots\n", "0\n", "-1\n"])
def test_default_backlog_without_a_readable_ceiling(tmp_path: Path, content: str | None) -> None:
    somaxconn = tmp_path / "somaxconn"
    if content is not None:
        somaxconn.write_text(content)
    assert default_backlog(somaxconn) == DEFAULT_BACKLOG


@linux_only
def test_udp_drops_counts_what_a_full_receive_buffer_lost() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        receiver.bind(("127.0.0.1", 0))
        inode = socket_inode(receiver.fileno())
        assert inode is not None
        assert udp_drops([inode]) == 0
        for _ in range(500):  # far more than 4 KiB of buffer can hold
            sender.sendto(b"x" * 512, receiver.getsockname())
        dropped = udp_drops([inode])
        assert dropped is not None and dropped > 0
        # What was not dropped is still there to read.
        receiver.setblocking(False)
        kept = 0
        while True:
            try:
                receiver.recv(1024)
            except BlockingIOError:
                break
            kept += 1
        assert kept + dropped == 500
    finally:
        receiver.close()
        sender.close()


def test_udp_drops_of_unknown_sockets_are_unknown(tmp_path: Path) -> None:
    table = tmp_path / "udp"
    table.write_text(
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
        "   uid  timeout inode ref pointer drops\n"
        "  1: 0100007F:270F 00000000:0000 07 00000000:00000000 00:00000000 00000000"
        "     0        0 4242 2 0000000000000000 17\n"
    )
    assert udp_drops([4242], [table]) == 17
    assert udp_drops([4243], [table]) is None
    assert udp_drops([4242], [tmp_path / "missing"]) is None


def test_listen_overflows_read_from_netstat(tmp_path: Path) -> None:
    netstat = tmp_path / "netstat"
    netstat.write_text(
        "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n"
        "TcpExt: 3 12 14\n"
        "IpExt: InNoRoutes\n"
        "IpExt: 0\n"
    )
    assert listen_overflows(netstat) == 12
    assert listen_overflows(tmp_path / "missing") is None
    netstat.write_text("IpExt: InNoRoutes\nIpExt: 0\n")
    assert listen_overflows(netstat) is None


@linux_only
def test_listen_overflows_of_this_machine_are_readable() -> None:
    value = listen_overflows()
    assert isinstance(value, int) and value >= 0
