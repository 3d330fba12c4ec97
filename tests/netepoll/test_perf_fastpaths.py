"""
The protocols' fast paths behave as the general code they shorten: the
C{seed} framing's one-message shortcut against its general path, and the
per-connection log events that C{twist --log-level warn net} no longer
builds only to drop them.  (The transport's, the accepter's and the UDP
port's are in test_transport.py, test_accept.py and test_udp.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.application.twist._options import TwistOptions
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs

from twisted_net.config import ServerConfig
from twisted_net.hello import split_seed_read
from twisted_net.server.datagram import GreetingDatagramProtocol
from twisted_net.server.factory import GreetingFactory
from twisted_net.server.framing import SeedProtocol
from twisted_net.tap import Options

LOOPBACK = "127.0.0.1"


# The seed framing's one-message shortcut -------------------------------------


def seed_session(config: ServerConfig) -> tuple[SeedProtocol, StringTransport]:
    factory = GreetingFactory("seed", config, clock=Clock())
    protocol = factory.buildProtocol(IPv4Address("TCP", LOOPBACK, 40000))
    assert isinstance(protocol, SeedProtocol)
    transport = StringTransport()
    protocol.makeConnection(transport)
    transport.clear()
    return protocol, transport


_READS = st.one_of(
    st.binary(max_size=12),
    st.lists(st.sampled_from([b"a", b"Mi", b"", b"exit", b"\r", b"\n", b"\n", b"Sarah"])).map(
        b"".join
    ),
    st.sampled_from(
        [
            b"exit",
            b"exit\n",
            b"Mi\nexit",
            b"Michael Jordan",
            b"Mi\r\nJo",
            b"Mi\nJo\n",
            b"a\n\nb\n",
            b"Mi\nexit\nJo\n",
            b"\n",
            b"Mi\r\n",
        ]
    ),
)


@given(st.lists(_READS, min_size=1, max_size=4), st.sampled_from([6, 64]))
def test_one_message_shortcut_answers_as_the_general_path(
    reads: list[bytes], max_message: int
) -> None:
    """
    Whatever the reads, C{dataReceived} (with its shortcuts for a read that
    is one ordinary message and for a read of whole lines) answers, closes
    and counts exactly as the general path that cuts every read into
    messages.
    """
    config = ServerConfig(max_message=max_message, max_per_peer=0)
    fast, fast_transport = seed_session(config)
    general, general_transport = seed_session(config)
    for data in reads:
        if data:
            fast.dataReceived(data)
            if not general._closing:
                general.factory.counters.bytes_in += len(data)
                general.messagesReceived(split_seed_read(data))
    assert fast_transport.value() == general_transport.value()
    assert fast_transport.disconnecting == general_transport.disconnecting
    assert fast.factory.counters.snapshot() == general.factory.counters.snapshot()


# Per-connection log events -------------------------------------------------------


@pytest.mark.parametrize(
    ("twist_args", "logged"),
    [
        ([], True),
        (["--log-level", "debug"], True),
        (["--log-level", "info"], True),
        (["--log-level", "warn"], False),
        (["--log-level", "error"], False),
    ],
)
def test_connection_events_follow_twists_log_level(twist_args: list[str], logged: bool) -> None:
    """
    Under C{twist --log-level warn} (or higher) the server does not build
    the connection events its log would drop.
    """
    options = TwistOptions()
    options.parseOptions([*twist_args, "net", "--listen", "tcp:0", "--udp", "127.0.0.1:0"])
    assert options.subOptions["config"].log_connections is logged


def test_net_options_alone_log_connections() -> None:
    """
    Outside C{twist} (embedding, C{twistd}), connections are logged.
    """
    options = Options()
    options.parseOptions(["--listen", "tcp:0"])
    assert options["config"].log_connections is True


@pytest.mark.parametrize("log_connections", [True, False])
def test_connections_are_counted_whether_or_not_logged(log_connections: bool) -> None:
    config = ServerConfig(max_per_peer=0, log_connections=log_connections)
    with capturedLogs() as events:
        protocol, _ = seed_session(config)
        protocol.dataReceived(b"exit")
        protocol.connectionLost()
    names = [event.get("event") for event in events]
    expected = ["connection_opened", "connection_closed"] if log_connections else []
    assert [n for n in names if n in ("connection_opened", "connection_closed")] == expected
    counters = protocol.factory.counters
    assert counters.connections_total == 1 and counters.connections_open == 0


# The UDP protocol's common-datagram shortcut -------------------------------------


class NeverRemembered(set[Any]):
    """
    A source cache that never remembers, so that every datagram takes the
    general path of L{GreetingDatagramProtocol}.
    """

    def add(self, element: Any) -> None:
        pass


class SentDatagrams:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, payload: bytes, addr: Any) -> int:
        self.sent.append((payload, addr))
        return len(payload)


class DatagramTransport:
    def __init__(self) -> None:
        self.socket = SentDatagrams()


def datagram_protocol(config: ServerConfig, clock: Clock, general: bool) -> Any:
    protocol = GreetingDatagramProtocol(config, clock=clock)
    if general:
        protocol._answerable_sources = NeverRemembered()
    protocol.makeConnection(DatagramTransport())
    return protocol


_SOURCES = st.tuples(
    st.sampled_from(["127.0.0.1", "10.0.0.7", "255.255.255.255", "224.0.0.1", "::1", "0.0.0.0"]),
    st.sampled_from([40000, 40001, 7, 53, 0]),
)
_DATAGRAMS = st.one_of(
    st.binary(max_size=12),
    st.sampled_from(
        [
            b"Hello, x!",
            b"Hello, x!\r\n",
            b"error: no",
            b"Hello, far too long!",
            b"Michael Jordan",
            b"Mi\n",
            b"Mi\r\n",
        ]
    ),
)


@given(
    st.lists(
        st.tuples(st.lists(st.tuples(_DATAGRAMS, _SOURCES), max_size=5), st.floats(0, 0.05)),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([0.0, 20.0]),
    st.booleans(),
)
def test_common_datagram_shortcuts_answer_as_the_general_path(
    arrivals: list[tuple[list[tuple[bytes, tuple[str, int]]], float]],
    rate: float,
    log_messages: bool,
) -> None:
    """
    Whatever arrives from wherever, in batches or one by one, with or
    without rate limiting, the protocol answers, refuses and counts exactly
    as its general path does (the loop, source and rate guards included).
    """
    config = ServerConfig(max_message=10, udp_rate=rate, udp_burst=2, log_messages=log_messages)
    clocks = [Clock(), Clock(), Clock()]
    batches, single, general = (
        datagram_protocol(config, clocks[0], general=False),
        datagram_protocol(config, clocks[1], general=False),
        datagram_protocol(config, clocks[2], general=True),
    )
    for batch, pause in arrivals:
        for clock in clocks:
            clock.advance(pause)
        batches.datagramsReceived(batch)
        for datagram, source in batch:
            single.datagramReceived(datagram, source)
            general.datagramReceived(datagram, source)
    assert batches.transport.socket.sent == general.transport.socket.sent
    assert single.transport.socket.sent == general.transport.socket.sent
    assert batches.counters.snapshot() == general.counters.snapshot()
    assert single.counters.snapshot() == general.counters.snapshot()


def test_general_path_is_what_the_shortcut_tests_compare_with() -> None:
    """
    The reference protocol of the test above takes the general path for
    every datagram (otherwise it would compare the shortcut with itself).
    """
    protocol = datagram_protocol(ServerConfig(), Clock(), general=True)
    protocol._answer = lambda datagram, addr: taken.append(datagram)  # type: ignore[method-assign]
    taken: list[bytes] = []
    for _ in range(3):
        protocol.datagramReceived(b"M", ("127.0.0.1", 40000))
        protocol.datagramsReceived([(b"N", ("127.0.0.1", 40000))])
    assert taken == [b"M", b"N"] * 3


def test_error_answering_one_datagram_does_not_stop_the_batch() -> None:
    """
    An error while answering one datagram of a batch is logged, and the
    rest of the batch is answered and counted.
    """
    protocol = datagram_protocol(ServerConfig(), Clock(), general=False)
    answer = protocol._answer

    def broken(datagram: bytes, addr: Any) -> None:
        if datagram == b"boom\n":
            raise ValueError("broken")
        answer(datagram, addr)

    protocol._answer = broken
    source = ("127.0.0.1", 40000)
    with capturedLogs() as events:
        protocol.datagramsReceived([(b"A", source), (b"boom\n", source), (b"B", source)])
    assert [payload for payload, _ in protocol.transport.socket.sent] == [
        b"Hello, A!",
        b"Hello, B!",
    ]
    assert protocol.counters.datagrams_answered == 2
    assert [event["log_failure"].type for event in events if "log_failure" in event] == [ValueError]
