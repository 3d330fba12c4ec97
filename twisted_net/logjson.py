"""
The JSON text of a log event, as C{eventAsJSON} writes it, for less.

C{eventAsJSON} flattens the event again (parsing its format), then calls
C{json.dumps}, which builds a new C encoder, with a Python hook that saves
the logger, the level and the source anew for every event.  For an event
already flattened, L{event_json} is one call of a C encoder built once, its
hook answering from what Twisted made of each kind the first time.  See
docs/PERFORMANCE.md, section "Log events at the default level".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii

from twisted.logger import LogLevel, eventAsJSON
from twisted.python.failure import Failure

__all__ = ["NamedConstant", "event_json"]

NamedConstant = type(LogLevel.info)
"""The type of Twisted's log levels (C{constantly}'s C{NamedConstant})."""

_SAVED: dict[object, object] = {}


def _saved(value: object) -> object:
    """
    How C{eventAsJSON} saves a value JSON cannot hold: a logger or a source
    is "unpersistable", a level its name; asked of Twisted once per kind.
    """
    key = value if isinstance(value, NamedConstant) else type(value)
    try:
        return _SAVED[key]
    except (KeyError, TypeError):
        pass
    if isinstance(value, bytes):
        return value.decode("charmap")
    if isinstance(value, Failure):
        raise TypeError("a Failure: saved by eventAsJSON itself")
    saved = json.loads(eventAsJSON({"value": value}))["value"]
    _SAVED[key] = saved
    return saved


_ENCODER = json.JSONEncoder(skipkeys=True, check_circular=False, default=_saved)
"""C{json.dumps(event, default=..., skipkeys=True)}, as C{eventAsJSON} calls
it, made once, with the hook that saves a logger, a level or a source from
what Twisted made of its kind the first time.  An event that refers to
itself raises C{RecursionError} instead of C{ValueError}, and goes to
C{eventAsJSON}, which says so."""


_SAMPLE_JSON = '{"a": "\\u00e9\\n", "b": [1.5, Infinity, null, true], "c": {"d": -2}}'
"""What C{json.dumps} writes for the sample that checks the C encoder."""


def _c_encoding(encoder: json.JSONEncoder) -> Callable[[object], str]:
    """
    C{encoder.encode}, calling the C encoder that it builds on every call
    only once, where this Python has one that writes what C{encode} writes.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    try:
        encode_chunks = make(
            None,
            encoder.default,
            encode_basestring_ascii,
            None,
            encoder.key_separator,
            encoder.item_separator,
            encoder.sort_keys,
            encoder.skipkeys,
            encoder.allow_nan,
        )

        def encode(value: object) -> str:
            return "".join(encode_chunks(value, 0))

        sample = {"a": "\u00e9\n", "b": [1.5, float("inf"), None, True], "c": {"d": -2}}
        if encode(sample) != _SAMPLE_JSON:
            return encoder.encode
    except Exception:  # another signature: the public path is right too
        return encoder.encode
    return encode


event_json = _c_encoding(_ENCODER)
"""
C{json.dumps(event, default=<eventAsJSON's hook>, skipkeys=True)}: the text
C{eventAsJSON} writes for an event that needs no flattening.  Raises
C{TypeError} for a value that C{eventAsJSON} saves itself (a failure), and
C{RecursionError} for an event that refers to itself.
"""
