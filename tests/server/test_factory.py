"""
Tests for L{twisted_net.server.factory}: the framing by name, the shared
config.
"""

from __future__ import annotations

import pytest
from sessions import Session
from twisted.internet.task import Clock

from twisted_net.config import ServerConfig
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.framing import LineProtocol, SeedProtocol


def test_factory_builds_the_framing_asked_for() -> None:
    """
    C{seed} builds L{SeedProtocol}, C{line} L{LineProtocol}; anything else
    is refused.
    """
    assert isinstance(Session("seed").protocol, SeedProtocol)
    assert isinstance(Session("line").protocol, LineProtocol)
    with pytest.raises(ValueError, match="unknown framing"):
        GreetingFactory("lines", clock=Clock())


def test_unknown_framing_names_the_choices() -> None:
    """
    The error for an unknown framing lists every framing of the registry.
    """
    with pytest.raises(ValueError) as raised:
        GreetingFactory("lines", clock=Clock())
    assert str(raised.value) == "unknown framing 'lines': choose seed or line"


@pytest.mark.parametrize(
    ("config", "limit"),
    [
        (ServerConfig(max_message=7), 7),
        (ServerConfig(max_message=7, delay=0.5), -1),
        (ServerConfig(max_message=7, log_messages=True), -1),
    ],
)
def test_assigning_a_config_keeps_the_fast_path_in_step(config: ServerConfig, limit: int) -> None:
    """
    Assigning C{factory.config} (or calling C{configure}) changes what the
    fast path answers: its limit follows the new config.
    """
    factory = GreetingFactory("seed", ServerConfig(), clock=Clock())
    factory.config = config
    assert factory.config is config
    assert factory.immediate_limit == limit
    other = GreetingFactory("seed", ServerConfig(), clock=Clock())
    other.configure(config)
    assert other.config is config and other.immediate_limit == limit


def test_a_new_config_applies_to_open_sessions() -> None:
    """
    A session open before the config changes answers by the new one: a
    longer limit, then a delay.
    """
    session = Session("seed", ServerConfig(max_message=3))
    session.factory.config = ServerConfig(max_message=10)
    assert session.send(b"Michael") == b"Hello, Michael!"
    session.factory.config = ServerConfig(max_message=10, delay=1.0)
    assert session.send(b"Jordan") == b""
    session.clock.advance(1.0)
    assert session.take() == b"Hello, Jordan!"
