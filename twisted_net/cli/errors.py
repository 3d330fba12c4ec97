"""
The failures of the C{twisted-net} command, as one line each in the user's
words (never a Python exception name), with the exit statuses.
"""

from __future__ import annotations

import os
import re
from typing import Any

from OpenSSL import SSL
from OpenSSL.crypto import Error as OpenSSLCryptoError
from twisted.internet import error as net_error
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.python.filepath import UnlistableError
from twisted.web.client import ResponseFailed

from twisted_net.client.errors import TLS_FAILURES, describe_tls_error
from twisted_net.client.fetch import FetchError
from twisted_net.client.tcp import ConversationError

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CLIError",
    "describe_error",
    "endpoint_from_string",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class CLIError(Exception):
    """
    A failure to report, one line per problem, with an exit status.
    """

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def describe_error(error: BaseException | Failure) -> str:
    """
    One line that says what went wrong, for any error a client can meet.
    """
    value = error.value if isinstance(error, Failure) else error
    if isinstance(value, (ResponseFailed, net_error.ConnectingCancelledError)):
        reasons = getattr(value, "reasons", None) or []
        if reasons:
            return describe_error(reasons[0])
    if isinstance(value, net_error.ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(value, net_error.DNSLookupError):
        detail = str(value.args[0]) if value.args else ""
        return f"cannot resolve the host name{': ' + detail if detail else ''}"
    if isinstance(value, (TimeoutError, net_error.TimeoutError, CancelledError)):
        return "timed out"
    if isinstance(value, TLS_FAILURES):
        return f"TLS error: {describe_tls_error(value)}"
    if isinstance(value, net_error.ConnectionDone):
        return "the server closed the connection"
    if isinstance(value, net_error.ConnectError):
        return f"cannot connect: {_connect_reason(value)}"
    if isinstance(value, (ConversationError, FetchError, CLIError, ValueError, OSError)):
        if isinstance(value, OSError) and value.strerror:
            where = f": {value.filename}" if value.filename else ""
            return f"{value.strerror}{where}"
        return str(value)
    return f"unexpected {type(value).__name__}: {value}"


def _connect_reason(error: net_error.ConnectError) -> str:
    """
    Why a connection failed: Twisted keeps the C{errno} in C{osError} and
    the system's text, when there is one, in the first argument.
    """
    text = str(error.args[0]) if error.args and error.args[0] else ""
    if not text and isinstance(error.osError, int):
        text = os.strerror(error.osError)
    elif not text and error.osError:
        text = str(error.osError)
    return (text or error.__doc__ or "").strip().rstrip(".")


# Output ----------------------------------------------------------------------


_ENDPOINT_FORMS = {
    "tcp": "tcp:HOST:PORT",
    "tls": "tls:HOST:PORT[:trustRoots=DIR]",
    "ssl": "ssl:HOST:PORT",
    "unix": "unix:PATH",
}
_MISSING = re.compile(r"missing \d+ required positional arguments?: (.*)")
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")
_NOT_A_NUMBER = re.compile(r"invalid literal for int\(\) with base 10: ('.*')")


def _endpoint_problem(description: str, error: Exception) -> str:
    """
    What is wrong with an endpoint string, from whatever Twisted's parsers
    raised (C{TypeError}s of the endpoint's constructor, C{ValueError}s,
    errors reading C{trustRoots} or certificate files).
    """
    kind = description.split(":", 1)[0]
    form = _ENDPOINT_FORMS.get(kind)
    expected = f"; expected {form}" if form else ""
    text = str(error)
    if isinstance(error, TypeError):
        missing = _MISSING.search(text)
        if missing:
            names = re.findall(r"'(\w+)'", missing.group(1))
            return f"missing {' and '.join(names) or 'arguments'}{expected}"
        unexpected = _UNEXPECTED.search(text)
        if unexpected:
            return f"unknown option {unexpected.group(1)!r}{expected}"
        if len(error.args) == 2 and isinstance(error.args[1], list):  # tls: keywords
            return f"unknown option(s) {', '.join(map(str, error.args[1]))}{expected}"
    if isinstance(error, ValueError):
        number = _NOT_A_NUMBER.search(text)
        if number:
            return f"{number.group(1)} is not a number{expected}"
        if text.startswith("Unknown endpoint type"):
            return f"{text}; expected one of {', '.join(form for form in _ENDPOINT_FORMS.values())}"
    if isinstance(error, UnlistableError):
        cause = error.originalException
        where = getattr(cause, "filename", None)
        reason = getattr(cause, "strerror", None) or str(cause)
        return f"cannot read the trustRoots directory{f' {where}' if where else ''}: {reason}"
    if isinstance(error, (SSL.Error, OpenSSLCryptoError)):
        return f"bad certificate: {describe_tls_error(error)}"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}{f': {error.filename}' if error.filename else ''}"
    return (text or type(error).__name__) + expected


def endpoint_from_string(reactor: Any, description: str) -> IStreamClientEndpoint:
    try:
        endpoint: IStreamClientEndpoint = clientFromString(reactor, description)
    except Exception as error:  # the parsers raise all kinds of things
        problem = _endpoint_problem(description, error)
        raise CLIError(f"bad endpoint {description!r}: {problem}", EXIT_USAGE) from None
    return endpoint
