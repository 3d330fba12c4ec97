"""
Loggers whose namespace stays what it is named, and whose events are built once.

Twisted's C{Logger}, used as a class attribute, renames itself after the
class it is read from (C{twisted_net.server.service.ServingNetService}...), which
would make the C{log_namespace} of this project's events depend on private
class names.  L{NamedLogger} keeps the namespace it is given (one per module,
C{twisted_net.stream} and so on) and still records the instance as the
event's source, so operators can filter on a stable name.

It also builds each event the way Twisted's observers would leave it: the
same keys in the same order, and, for a format whose fields are plain names,
the C{log_flattened} values that C{eventAsJSON} would otherwise compute
again for every event.  L{PreparedEvent} goes further for an event logged
for every connection: the whole event built in one dictionary.  Text and
JSON output are the same, byte for byte; see docs/PERFORMANCE.md, section
"Log events at the default level".
"""

from __future__ import annotations

from string import Formatter
from time import time
from typing import Any, cast

from twisted.logger import Logger, LogLevel, eventAsJSON

__all__ = ["NamedLogger", "PreparedEvent", "flattening"]

_LEVELS = frozenset(LogLevel.iterconstants())
_PLAIN_TYPES = (str, int)

Recipe = tuple[tuple[str, str, str], ...]
"""How to flatten one format: (flattened key, field name, how) per key,
where how is C{"str"}, C{"repr"} or C{"value"}."""

RECIPES_KEPT = 1000
"""Formats whose recipe is kept, at most (formats made on the fly must not
grow the cache without end)."""

_recipes: dict[str, Recipe | None] = {}


class _Probe:
    """A field value that says which field it stands for, and how it was read."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"\0str\0{self.name}"

    def __repr__(self) -> str:
        return f"\0repr\0{self.name}"


def _learn(format: str) -> Recipe | None:
    """
    Ask Twisted how it flattens C{format}: flatten an event of probes with
    the public C{eventAsJSON} and read back which key holds what.  C{None}
    for a format whose fields are not plain names, or that has a format
    spec (which Twisted's formatting of a flattened event would drop).
    """
    names: list[str] = []
    for _literal, name, spec, conversion in Formatter().parse(format):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion not in (None, "r", "s"):
            return None
        names.append(name)
    if not names:
        return None
    probe: dict[str, Any] = {name: _Probe(name) for name in names}
    probe["log_format"] = format
    eventAsJSON(probe)
    steps = []
    for key, value in cast(dict[str, object], probe.get("log_flattened", {})).items():
        if isinstance(value, _Probe):
            steps.append((key, value.name, "value"))
        elif isinstance(value, str) and value.startswith("\0"):
            _, how, name = value.split("\0")
            steps.append((key, name, how))
        else:
            return None
    return tuple(steps)


def flattening(format: str) -> Recipe | None:
    """
    The recipe for flattening events of C{format}, learnt once per format.
    """
    try:
        return _recipes[format]
    except KeyError:
        if len(_recipes) >= RECIPES_KEPT:
            return None  # Twisted flattens it, as it would without this
        recipe = _recipes[format] = _learn(format)
        return recipe


def _flattened(recipe: Recipe, fields: dict[str, Any]) -> dict[str, object] | None:
    flattened: dict[str, object] = {}
    for key, name, how in recipe:
        value = fields.get(name, _Probe)
        if how == "value":
            if value is _Probe:
                return None
            flattened[key] = value
        elif how == "repr":
            flattened[key] = repr(value)
        elif type(value) in _PLAIN_TYPES:
            # str(value) is what Twisted's text formatting shows for these.
            flattened[key] = str(value)
        else:
            return None
    return flattened


class NamedLogger(Logger):
    """
    A C{Logger} that keeps its namespace when used as a class attribute, and
    emits events already flattened.
    """

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # A new logger each time, as Twisted's: keeping it on the instance
        # would mean writing its __dict__, after which CPython 3.11 no longer
        # specialises attribute lookups on that object (a factory read on
        # every message: +700 instructions a lockstep message).
        source = owner if instance is None else instance
        return type(self)(self.namespace, source, self.observer)

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: object) -> None:
        """
        Emit an event, as C{Logger.emit} does; a format of plain fields
        arrives with its C{log_flattened} values already in the event.
        """
        if level not in _LEVELS or "log_trace" in kwargs or format is None:
            super().emit(level, format, **kwargs)
            return
        recipe = _recipes.get(format, _Probe)
        if recipe is _Probe:
            recipe = flattening(format)
        event = kwargs
        event.update(
            log_logger=self,
            log_level=level,
            log_namespace=self.namespace,
            log_source=self.source,
            log_format=format,
            log_time=time(),
        )
        if recipe is not None and "log_flattened" not in event:
            flattened = _flattened(cast(Recipe, recipe), event)
            if flattened is not None:
                event["log_flattened"] = flattened
        self.observer(event)


class PreparedEvent:
    """
    One event a server emits for every connection (C{connection_opened},
    C{connection_closed}), prepared once: calling it with the field's value
    gives observers the event that C{logger.emit(level, format, event=event,
    <field>=value)} would, the same keys in the same order, C{log_flattened}
    included, through the same logger's observer.

    C{Logger.emit} spends about 15,000 instructions an event before any
    observer sees it (a new logger for each C{self.log}, keyword arguments
    packed twice, the level checked against every level, the format's
    recipe looked up); this builds one dictionary (docs/PERFORMANCE.md,
    "Log events at the default level").  A value whose flattening is not
    plain text takes C{emit}.
    """

    def __init__(
        self, logger: NamedLogger, level: LogLevel, format: str, *, event: str, field: str
    ) -> None:
        self.logger = logger
        self.level = level
        self.format = format
        self.event = event
        self.field = field
        recipe = flattening(format) or ()
        plain = (
            bool(recipe)
            and all(name == field and how in ("str", "value") for _key, name, how in recipe)
            and level in _LEVELS
            and field != "event"
            and not field.startswith("log_")
        )
        # For a value of type str, each of these keys holds the value itself.
        self._flat_keys = tuple(key for key, _name, _how in recipe) if plain else None

    def __call__(self, value: object) -> None:
        """Emit the event, with C{value} as its field."""
        logger = self.logger
        flat_keys = self._flat_keys
        if flat_keys is None or type(value) is not str:
            logger.emit(self.level, self.format, **{"event": self.event, self.field: value})
            return
        logger.observer(
            {
                "event": self.event,
                self.field: value,
                "log_logger": logger,
                "log_level": self.level,
                "log_namespace": logger.namespace,
                "log_source": logger.source,
                "log_format": self.format,
                "log_time": time(),
                "log_flattened": dict.fromkeys(flat_keys, value),
            }
        )
