"""
Twisted's PROXY header parsers, behind a check.

L{twisted_net.server.proxy} needs to parse a PROXY header itself, to hold the
greeting protocol back until it has arrived; Twisted's parsers
(C{twisted.protocols.haproxy._v1parser.V1Parser}, C{._v2parser.V2Parser},
C{._exceptions.InvalidProxyHeader}) do it, but are private.  This module is
the only one that touches them.  On import it checks the names and shapes it
relies on, by parsing one header of each version and one invalid header;
if anything differs, L{PROBLEM} says what, and C{haproxy:} endpoints fall
back to Twisted's public C{twisted.protocols.haproxy.proxyEndpoint}
(L{twisted_net.server.proxy.proxy_header_endpoint}).
"""

from __future__ import annotations

import importlib
import socket
import struct
from typing import Any, Protocol

from twisted.internet.interfaces import IAddress

__all__ = ["PROBLEM", "HeaderParser", "InvalidHeaderError", "ParsedHeader", "choose_parser", "feed"]


class InvalidHeaderError(Exception):
    """
    The bytes are not (the start of) a valid PROXY header.
    """


class ParsedHeader(Protocol):
    """
    What a parsed PROXY header tells (Twisted's C{ProxyInfo}).
    """

    source: IAddress | None
    destination: IAddress | None


class HeaderParser(Protocol):
    """
    One of Twisted's PROXY header parsers.
    """

    def feed(self, data: bytes) -> tuple[Any, Any]:
        """
        Consume bytes: the header and what followed it, or C{(None, None)}.
        """


_V2_FIXED_HEADER = 16


def _load() -> tuple[Any, Any, type[Exception]]:
    """
    Import Twisted's parsers and check that they behave as this module expects.

    @raise Exception: whatever is missing or different.
    """
    v1 = importlib.import_module("twisted.protocols.haproxy._v1parser").V1Parser
    v2 = importlib.import_module("twisted.protocols.haproxy._v2parser").V2Parser
    invalid = importlib.import_module("twisted.protocols.haproxy._exceptions").InvalidProxyHeader
    if not (isinstance(invalid, type) and issubclass(invalid, Exception)):
        raise TypeError("InvalidProxyHeader is not an exception")
    if v1.PROXYSTR != b"PROXY" or len(v2.PREFIX) != 12:
        raise ValueError("V1Parser.PROXYSTR or V2Parser.PREFIX changed")
    info, rest = v1().feed(b"PROXY TCP4 10.0.0.1 10.0.0.2 1000 2000\r\nab")
    if (info.source.host, info.source.port, info.destination.port, rest) != (
        "10.0.0.1",
        1000,
        2000,
        b"ab",
    ):
        raise ValueError("V1Parser.feed gives a different result")
    addresses = socket.inet_aton("10.0.0.3") + socket.inet_aton("10.0.0.4")
    header = v2.PREFIX + b"\x21\x11\x00\x0c" + addresses + struct.pack("!HH", 3000, 4000)
    info, rest = v2().feed(header)
    if (info.source.host, info.source.port, rest) != ("10.0.0.3", 3000, b""):
        raise ValueError("V2Parser.feed gives a different result")
    try:
        v1().feed(b"PROXY NONSENSE\r\n")
    except invalid:
        pass
    else:
        raise ValueError("V1Parser.feed accepts an invalid header")
    return v1, v2, invalid


PROBLEM: str | None
"""Why Twisted's parsers cannot be used, or C{None} when they can."""

try:
    _V1, _V2, _INVALID = _load()
    PROBLEM = None
except Exception as error:
    _V1 = _V2 = None
    _INVALID = InvalidHeaderError
    PROBLEM = f"{type(error).__name__}: {error}"


def choose_parser(head: bytes) -> HeaderParser | None:
    """
    Pick the parser for the first bytes of a connection (only when
    L{PROBLEM} is C{None}).

    @return: a parser, or C{None} while C{head} is too short to decide.
    @raise InvalidHeaderError: C{head} is not the start of a PROXY header.
    """
    assert _V1 is not None and _V2 is not None, PROBLEM
    v2_signature: bytes = _V2.PREFIX
    v1_signature: bytes = _V1.PROXYSTR
    if v2_signature.startswith(head[: len(v2_signature)]):
        if len(head) < _V2_FIXED_HEADER:
            return None
        if head[12] & 0xF0 != 0x20:
            raise InvalidHeaderError()
        parser: HeaderParser = _V2()
        return parser
    if v1_signature.startswith(head[: len(v1_signature)]):
        if len(head) < len(v1_signature):
            return None
        parser = _V1()
        return parser
    raise InvalidHeaderError()


def feed(parser: HeaderParser, data: bytes) -> tuple[ParsedHeader | None, bytes]:
    """
    Feed C{data} to C{parser}.

    @return: the parsed header (or C{None} until it is complete) and the
        bytes that followed it.
    @raise InvalidHeaderError: the header is not valid.
    """
    try:
        info, remaining = parser.feed(data)
    except _INVALID:
        raise InvalidHeaderError() from None
    return info, remaining or b""
