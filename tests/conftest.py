"""
Fixtures shared by the test modules.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import RunningServer, start_server


@pytest.fixture
def twist_net() -> Iterator[Callable[..., RunningServer]]:
    """
    Start installed C{twist net} subprocesses (C{twist_net([...args])}); every
    one still running is killed at teardown.
    """
    started: list[RunningServer] = []

    def start(args: list[str], **kwargs: Any) -> RunningServer:
        server = start_server(args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)
