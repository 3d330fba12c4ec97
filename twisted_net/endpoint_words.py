"""
What is wrong with an endpoint string, in the user's words, from the
Python errors Twisted's endpoint parsers raise (a C{TypeError} of the
endpoint's constructor, an C{int()} C{ValueError}): shared by the server's
C{--listen} (L{twisted_net.server.endpoints}) and the clients
(L{twisted_net.client.endpoints}).  Pure text: no Twisted, no OpenSSL.
"""

from __future__ import annotations

import re

__all__ = ["parser_problem"]

_MISSING = re.compile(r"missing \d+ required positional arguments?: (.*)")
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")
_TWICE = re.compile(r"got multiple values for (?:keyword )?argument '(\w+)'")
_NOT_A_NUMBER = re.compile(r"invalid literal for int\(\) with base 10: ('.*')")


def parser_problem(error: Exception, twice_hint: str) -> str | None:
    """
    The user's words for what an endpoint parser raised, or C{None} when it
    is none of the Python errors known here.

    @param twice_hint: why an argument can come twice (an IPv6 address
        whose colons were not escaped) and how to write it instead.
    """
    message = str(error)
    if isinstance(error, TypeError):
        missing = _MISSING.search(message)
        if missing:
            names = re.findall(r"'(\w+)'", missing.group(1))
            return f"missing {' and '.join(names) or 'arguments'}"
        unexpected = _UNEXPECTED.search(message)
        if unexpected:
            return f"unknown option {unexpected.group(1)!r}"
        twice = _TWICE.search(message)
        if twice:
            return f"{twice.group(1)} given twice ({twice_hint})"
    if isinstance(error, ValueError):
        number = _NOT_A_NUMBER.search(message)
        if number:
            return f"{number.group(1)} is not a number"
    return None
