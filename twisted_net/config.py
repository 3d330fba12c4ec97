"""
The knobs shared by the TCP and UDP sides, in one immutable value.

L{twisted_net.tap.Options} parses the command line into a L{ServerConfig};
programs that embed the protocols build one directly.  Every limit has a
default that is safe on a public port; C{0} switches a limit off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "MAX_DELAY",
    "OptionSpec",
    "ServerConfig",
    "command_line_options",
    "config_from_options",
    "number",
]

MAX_DELAY = 3600.0
"""The longest --delay accepted: beyond it no client would wait for a reply."""

_OPTION = "twisted_net.option"
"""The key of a field's L{OptionSpec} in its dataclass metadata."""


def number(
    kind: Callable[[str], Any], name: str, minimum: float = 0, maximum: float = math.inf
) -> Callable[[str], Any]:
    """
    A C{usage.Options} coercer: C{kind(text)} within C{[minimum, maximum]},
    finite, or a C{ValueError} in the user's words.

    @param name: the option as the user typed it, e.g. C{--delay}.
    """

    def coerce(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, not {text!r}") from None
        if value < minimum or value != value:
            raise ValueError(f"{name} must be at least {minimum}, not {text!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {text!r}")
        if value > maximum:
            raise ValueError(f"{name} must be at most {maximum:g}, not {text!r}")
        return value

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


@dataclass(frozen=True)
class OptionSpec:
    """
    How one L{ServerConfig} field appears on C{twist net}'s command line.

    @ivar name: the long option, without C{--}.
    @ivar help: its line in C{--help}.
    @ivar minimum: the smallest value accepted (parameters only).
    @ivar maximum: the largest value accepted (parameters only).
    @ivar flag: a flag (C{--log-messages}) rather than a parameter.
    """

    name: str
    help: str
    minimum: float = 0
    maximum: float = math.inf
    flag: bool = False

    def coercer(self, kind: type) -> Callable[[str], Any]:
        """
        The coercer of this parameter, for values of type C{kind}.
        """
        return number(kind, f"--{self.name}", self.minimum, self.maximum)


def _option(default: Any, name: str, help: str, minimum: float = 0, **spec: Any) -> Any:
    """
    A dataclass field with default C{default} and its command-line option.
    """
    return field(
        default=default, metadata={_OPTION: OptionSpec(name, help, minimum=minimum, **spec)}
    )


@dataclass(frozen=True)
class ServerConfig:
    """
    Behaviour and limits of a greeting server.  Each field that C{twist net}
    sets from its command line carries its L{OptionSpec} in its metadata
    (see L{command_line_options}).

    @ivar delay: seconds to wait before each reply (the tutorial's
        C{time.sleep(1)}, done with C{callLater}); C{0} replies at once.
    @ivar max_message: longest message, in bytes, that is answered.
    @ivar idle_timeout: seconds a TCP connection may stay silent.
    @ivar message_timeout: seconds a partial C{line} message may take to
        complete (stops clients that drip one byte at a time).
    @ivar write_timeout: seconds a TCP connection may stay blocked on a
        peer that does not read its replies, or spend flushing on close.
    @ivar max_connections: TCP connections open at once, over all peers.
    @ivar max_per_peer: TCP connections open at once from one host.
    @ivar queue_limit: bytes of delayed replies a TCP connection may have
        waiting before the server stops reading from it.
    @ivar udp_rate: datagrams per second answered for one source host.
    @ivar udp_burst: how many datagrams one source may send at once.
    @ivar log_messages: log every message (off: it costs throughput).
    @ivar log_connections: log each TCP connection's opening and closing
        (info events); C{twist net} turns it off when its C{--log-level}
        would drop them anyway, so that they cost nothing per connection.
    @ivar shutdown_timeout: seconds a stop waits for owed replies before it
        aborts the remaining connections.
    """

    delay: float = _option(
        0.0,
        "delay",
        "Seconds to wait before each reply (the tutorial sleeps 1).",
        maximum=MAX_DELAY,
    )
    max_message: int = _option(
        4096,
        "max-message",
        "Longest message answered, in bytes; longer ones get an error.",
        minimum=1,
    )
    idle_timeout: float = _option(
        300.0, "idle-timeout", "Close TCP connections silent this many seconds (0: never)."
    )
    message_timeout: float = _option(
        30.0,
        "message-timeout",
        "Close a 'line' connection whose partial message is not completed in this many "
        "seconds (0: never).",
    )
    write_timeout: float = _option(
        30.0,
        "write-timeout",
        "Abort a TCP connection whose peer does not read its replies for this many seconds "
        "(0: never).",
    )
    max_connections: int = _option(
        10000, "max-connections", "TCP connections open at once (0: no limit)."
    )
    max_per_peer: int = _option(
        100, "max-per-peer", "TCP connections open at once from one host (0: no limit)."
    )
    queue_limit: int = _option(
        65536,
        "queue-limit",
        "Bytes of delayed replies (--delay) one TCP connection may have waiting before the "
        "server stops reading from it.",
        minimum=1,
    )
    udp_rate: float = _option(
        200.0, "udp-rate", "Datagrams per second answered for one source host (0: no limit)."
    )
    udp_burst: int = _option(
        400,
        "udp-burst",
        "Datagrams one source host may send at once above the rate.",
        minimum=1,
    )
    log_messages: bool = _option(
        False, "log-messages", "Log every message received (costs throughput).", flag=True
    )
    log_connections: bool = True
    shutdown_timeout: float = _option(
        10.0, "shutdown-timeout", "On stop, seconds to wait for owed replies before aborting."
    )

    def __post_init__(self) -> None:
        for name in _SECONDS_OR_RATES:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"ServerConfig.{name} must be a finite number >= 0, not {value!r}")
        for name, minimum in _COUNTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"ServerConfig.{name} must be an integer >= {minimum}, not {value!r}"
                )


_SECONDS_OR_RATES = (
    "delay",
    "idle_timeout",
    "message_timeout",
    "write_timeout",
    "udp_rate",
    "shutdown_timeout",
)
_COUNTS = {
    "max_message": 1,
    "udp_burst": 1,
    "max_connections": 0,
    "max_per_peer": 0,
    "queue_limit": 0,
}


def command_line_options() -> Iterator[tuple[str, type, Any, OptionSpec]]:
    """
    The L{ServerConfig} fields set from the command line: per field, its
    name, the type of its values, its default and its L{OptionSpec}.
    """
    for item in fields(ServerConfig):
        spec = item.metadata.get(_OPTION)
        if spec is not None:
            yield item.name, type(item.default), item.default, spec


def config_from_options(options: Mapping[str, Any], **others: Any) -> ServerConfig:
    """
    The L{ServerConfig} of parsed command-line C{options} (keyed by option
    name), with C{others} for the fields no option sets.
    """
    values = {
        name: bool(options[spec.name]) if spec.flag else options[spec.name]
        for name, _, _, spec in command_line_options()
    }
    return ServerConfig(**values, **others)
