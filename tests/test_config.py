"""
Tests for L{twisted_net.config}: L{ServerConfig}'s checks, and the option
metadata on its fields that C{twist net}'s options are built from.
"""

from __future__ import annotations

import dataclasses

import pytest

from twisted_net.config import (
    MAX_DELAY,
    ServerConfig,
    command_line_options,
    config_from_options,
    number,
)
from twisted_net.tap import Options


def test_options_cover_the_config() -> None:
    """
    Every field but C{log_connections} (derived from C{twist --log-level})
    has an option; each option's default is the field's.
    """
    options = {name: (default, spec) for name, _, default, spec in command_line_options()}
    fields = {field.name: field.default for field in dataclasses.fields(ServerConfig)}
    assert set(fields) - set(options) == {"log_connections"}
    for name, (default, spec) in options.items():
        assert default == fields[name]
        assert spec.name == name.replace("_", "-")


def test_options_are_built_from_the_metadata() -> None:
    """
    L{Options} lists each field's option, with its help text and default.
    """
    parsed = Options()
    help_text = " ".join(str(parsed).split())
    for _, _, default, spec in command_line_options():
        assert " ".join(spec.help.split()) in help_text
        assert parsed[spec.name] == (0 if spec.flag else default)


def test_config_from_options() -> None:
    """
    Parsed options become a L{ServerConfig}; flags become booleans, and
    fields no option sets come from the keywords.
    """
    parsed = Options()
    parsed.parseOptions(["--delay", "0.5", "--log-messages", "--max-per-peer", "3", "--no-udp"])
    config = config_from_options(parsed, log_connections=False)
    assert config == ServerConfig(
        delay=0.5, log_messages=True, max_per_peer=3, log_connections=False
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "--n must be a number, not 'x'"),
        ("0", "--n must be at least 1, not '0'"),
        ("nan", "--n must be at least 1, not 'nan'"),
        ("inf", "--n must be a finite number, not 'inf'"),
        ("11", "--n must be at most 10, not '11'"),
    ],
)
def test_number_errors(text: str, message: str) -> None:
    coerce = number(float, "--n", 1, 10)
    with pytest.raises(ValueError) as caught:
        coerce(text)
    assert str(caught.value) == message


def test_number_accepts_its_range() -> None:
    assert number(int, "--n", 1)("7") == 7
    assert number(float, "--n", 0, MAX_DELAY)(str(MAX_DELAY)) == MAX_DELAY
    assert number(float, "--n")("0") == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("delay", -1.0),
        ("delay", float("inf")),
        ("delay", "1"),
        ("max_message", 0),
        ("max_message", 1.5),
        ("max_per_peer", -1),
        ("udp_rate", float("nan")),
    ],
)
def test_server_config_refuses_bad_values(field: str, value: object) -> None:
    """
    A program that embeds the server gets a clear error for a nonsensical
    limit, as the command line does.
    """
    with pytest.raises(ValueError, match=f"ServerConfig.{field} must be"):
        ServerConfig(**{field: value})  # type: ignore[arg-type]
