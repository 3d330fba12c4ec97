"""
The failures of the C{twisted-net} command, as one line each in the user's
words (never a Python exception name), with the exit statuses.
"""

from __future__ import annotations

import os

from twisted.internet import error as net_error
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure
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
    if isinstance(value, net_error.BadFileError):  # unix:PATH:checkPID=1
        path = _text(value.osError) if value.osError else "the socket"  # Twisted puts it there
        return f"cannot connect: no server holds the lock file {path}.lock"
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
    text = _text(error.args[0]) if error.args and error.args[0] else ""
    if not text and isinstance(error.osError, int):
        text = os.strerror(error.osError)
    elif not text and error.osError:
        text = _text(error.osError)
    return (text or error.__doc__ or "").strip().rstrip(".")


def _text(value: object) -> str:
    """
    A path or message from Twisted, as text: bytes paths decoded as the
    file system does, never shown as C{b'...'}.
    """
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)
