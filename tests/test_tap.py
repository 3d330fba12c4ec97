"""
Tests for L{twisted_net.tap}: C{twist net} options, their validation and
the service they describe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from twisted.python import usage

from twisted_net.config import ServerConfig
from twisted_net.server.service import DatagramListener, NetService, StreamListener
from twisted_net.tap import DEFAULT_LISTEN, Options, makeService


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


def test_defaults() -> None:
    """
    Without options: TCP on 127.0.0.1:9999 and UDP on 127.0.0.1:9999, the
    tutorial's framing, and the default limits.
    """
    options = parse()
    assert DEFAULT_LISTEN == "tcp:9999:interface=127.0.0.1"
    assert options["listen"] == [DEFAULT_LISTEN]
    assert options["udp"] == [("127.0.0.1", 9999)]
    assert options["framing"] == "seed"
    assert options["config"] == ServerConfig()


def test_listen_and_udp_are_repeatable() -> None:
    """
    C{--listen}/C{-l} and C{--udp} collect every value, in order, and
    replace the defaults.
    """
    options = parse(
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "-l",
        r"tcp6:0:interface=\:\:1",
        "--udp",
        "9998",
        "--udp",
        "[::1]:9999",
        "--udp",
        "127.0.0.1:0",
    )
    assert options["listen"] == ["tcp:0:interface=127.0.0.1", r"tcp6:0:interface=\:\:1"]
    assert options["udp"] == [("0.0.0.0", 9998), ("::1", 9999), ("127.0.0.1", 0)]


def test_every_option_reaches_the_config() -> None:
    """
    Every numeric option and C{--log-messages} end up in L{ServerConfig}.
    """
    options = parse(
        "--framing",
        "line",
        "--delay",
        "1.5",
        "--max-message",
        "10",
        "--idle-timeout",
        "7",
        "--message-timeout",
        "3",
        "--write-timeout",
        "4",
        "--max-connections",
        "50",
        "--max-per-peer",
        "5",
        "--udp-rate",
        "0",
        "--udp-burst",
        "2",
        "--shutdown-timeout",
        "2.5",
        "--log-messages",
    )
    assert options["framing"] == "line"
    assert options["config"] == ServerConfig(
        delay=1.5,
        max_message=10,
        idle_timeout=7.0,
        message_timeout=3.0,
        write_timeout=4.0,
        max_connections=50,
        max_per_peer=5,
        udp_rate=0.0,
        udp_burst=2,
        shutdown_timeout=2.5,
        log_messages=True,
    )


def test_no_tcp() -> None:
    """
    C{--no-tcp} leaves only the default UDP listener.
    """
    options = parse("--no-tcp")
    assert options["listen"] == []
    assert options["udp"] == [("127.0.0.1", 9999)]


def test_no_udp() -> None:
    """
    C{--no-udp} leaves only the default TCP listener.
    """
    options = parse("--no-udp")
    assert options["listen"] == [DEFAULT_LISTEN]
    assert options["udp"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-tcp", "--no-udp"], "--no-tcp and --no-udp together leave nothing to serve"),
        (["--no-tcp", "--listen", "tcp:0"], "--no-tcp contradicts --listen"),
        (["--no-udp", "--udp", "0"], "--no-udp contradicts --udp"),
        (["--framing", "lines"], "framing must be one of seed, line, not 'lines'"),
        (["--delay", "-1"], "--delay must be at least 0, not '-1'"),
        (["--delay", "soon"], "--delay must be a number, not 'soon'"),
        (["--delay", "nan"], "--delay must be at least 0, not 'nan'"),
        (["--delay", "inf"], "--delay must be a finite number, not 'inf'"),
        (["--delay", "1e300"], "--delay must be at most 3600, not '1e300'"),
        (["--idle-timeout", "inf"], "--idle-timeout must be a finite number, not 'inf'"),
        (["--udp", "localhost:9999"], "'localhost' is not an IP address"),
        (["--udp", "999.1.1.1:9"], "'999.1.1.1' is not an IP address"),
        (["--max-message", "0"], "--max-message must be at least 1, not '0'"),
        (["--max-connections", "1.5"], "--max-connections must be a number, not '1.5'"),
        (["--udp-burst", "0"], "--udp-burst must be at least 1, not '0'"),
        (["--idle-timeout", "-5"], "--idle-timeout must be at least 0"),
        (["--udp", "::1:9999"], "put IPv6 hosts in brackets"),
        (["--udp", "[::1]9999"], "use [IPV6]:PORT"),
        (["--udp", "[localhost]:9999"], "'localhost' is not an IPv6 address"),
        (["--udp", "127.0.0.1:http"], "port 'http' is not a number"),
        (["--udp", "70000"], "port must be 0 to 65535"),
        (["--udp", ":9999"], "the host before ':' is empty"),
        (["--listen", "bogus:1"], "bad --listen endpoint 'bogus:1'"),
        (["--listen", "tcp:notaport"], "bad --listen endpoint 'tcp:notaport'"),
        (["--listen", "tcp:70000"], "bad --listen endpoint 'tcp:70000': port must be 0 to 65535"),
        (["--listen", "tcp:http"], "bad --listen endpoint 'tcp:http': port 'http' is not a number"),
    ],
)
def test_bad_options(args: list[str], message: str) -> None:
    """
    Every bad value is refused while parsing, with a message naming it.
    """
    with pytest.raises(usage.UsageError) as raised:
        parse(*args)
    assert message in str(raised.value)
    assert "Parameter type enforcement" not in str(raised.value)


def test_help_lists_every_option() -> None:
    """
    C{--help} documents every option.
    """
    text = str(Options())
    for option in [
        "--listen=",
        "--udp=",
        "--no-tcp",
        "--no-udp",
        "--framing=",
        "--delay=",
        "--max-message=",
        "--log-messages",
        "--idle-timeout=",
        "--message-timeout=",
        "--write-timeout=",
        "--max-connections=",
        "--max-per-peer=",
        "--udp-rate=",
        "--udp-burst=",
        "--shutdown-timeout=",
    ]:
        assert option in text


def test_make_service_wires_every_listener() -> None:
    """
    L{makeService} builds one TCP listener per C{--listen} sharing one
    factory, and one UDP listener per C{--udp}, each with its own protocol
    (a datagram protocol serves one port) sharing the counters.
    """
    options = parse(
        "--framing",
        "line",
        "--delay",
        "0.5",
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--listen",
        "tcp:0:interface=127.0.0.2",
        "--udp",
        "127.0.0.1:0",
        "--udp",
        "[::1]:0",
    )
    service = makeService(options)
    assert isinstance(service, NetService)
    streams = [child for child in service if isinstance(child, StreamListener)]
    datagrams = [child for child in service if isinstance(child, DatagramListener)]
    assert [s.description for s in streams] == options["listen"]
    assert {s.factory for s in streams} == {service.factory}
    assert service.factory.framing == "line"
    assert service.config.delay == 0.5
    assert [(d.host, d.port_number) for d in datagrams] == [("127.0.0.1", 0), ("::1", 0)]
    assert datagrams[0].protocol is not datagrams[1].protocol
    assert datagrams[0].protocol.counters is service.factory.counters
    assert datagrams[1].protocol.counters is service.factory.counters


def test_make_service_no_tcp() -> None:
    """
    With C{--no-tcp} the service has UDP listeners only.
    """
    service = makeService(parse("--no-tcp", "--udp", "127.0.0.1:0"))
    assert isinstance(service, NetService)
    assert [type(child) for child in service] == [DatagramListener]


def test_plugin_names_the_options() -> None:
    """
    The plugin is called C{net} and uses these options and this service.
    """
    from twisted.plugins.twisted_net import TwistedNet

    assert TwistedNet.tapname == "net"
    assert TwistedNet.options is Options
    assert TwistedNet.makeService is makeService


def test_readme_documents_every_option() -> None:
    """
    The README's options table names every option of C{twist net --help},
    with the same default.
    """
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("<!-- section:server -->", 1)[1].split("<!-- section:", 1)[0]
    rows = {row.split("|")[1]: row for row in section.splitlines() if row.startswith("| `-")}
    options = Options()
    flags = cast("list[list[Any]]", options.optFlags)
    parameters = cast("list[list[Any]]", options.optParameters)
    names: list[tuple[str, Any]] = [(flag[0], None) for flag in flags]
    names += [(param[0], param[2]) for param in parameters]
    names += [("listen", DEFAULT_LISTEN), ("udp", "127.0.0.1:9999")]
    for name, default in names:
        matching = [
            row for key, row in rows.items() if f"`--{name}=" in key or f"`--{name}`" in key
        ]
        assert len(matching) == 1, f"--{name} is not in the README's options table"
        if default is not None:
            assert f"`{default}`" in matching[0], f"--{name}: default {default} not in README"


def test_build_service_stays_importable() -> None:
    """
    The wiring lives in L{twisted_net.server.service}; the names programs
    use keep working.
    """
    import twisted_net
    from twisted_net import tap
    from twisted_net.server import service

    assert tap.build_service is service.build_service
    assert twisted_net.build_service is service.build_service
