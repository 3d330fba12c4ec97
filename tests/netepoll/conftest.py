"""
Fixtures of the netepoll tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from netepoll_fakes import FAKE_SOCKETS

import twisted_net.netepoll.reactor as reactor_module
import twisted_net.netepoll.send as send_module


@pytest.fixture(autouse=True)
def fake_descriptors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """
    Send a transport's reads and writes of a fake socket's descriptor to
    that fake socket's C{recv} and C{send}; real descriptors are untouched.
    """

    def read(fd: int, size: int) -> bytes:
        fake = FAKE_SOCKETS.get(fd)
        return os.read(fd, size) if fake is None else fake.recv(size)  # type: ignore[no-any-return]

    def write(fd: int, data: bytes) -> int:
        fake = FAKE_SOCKETS.get(fd)
        return os.write(fd, data) if fake is None else fake.send(data)  # type: ignore[no-any-return]

    monkeypatch.setattr(reactor_module, "_read_descriptor", read)
    monkeypatch.setattr(send_module, "_write_descriptor", write)
    yield
    FAKE_SOCKETS.clear()
