"""
Loggers whose namespace stays what it is named.

Twisted's C{Logger}, used as a class attribute, renames itself after the
class it is read from (C{twisted_net.server.service.ServingNetService}...), which
would make the C{log_namespace} of this project's events depend on private
class names.  L{NamedLogger} keeps the namespace it is given (one per module,
C{twisted_net.stream} and so on) and still records the instance as the
event's source, so operators can filter on a stable name.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

__all__ = ["NamedLogger"]


class NamedLogger(Logger):
    """
    A C{Logger} that keeps its namespace when used as a class attribute.
    """

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        source = owner if instance is None else instance
        return type(self)(self.namespace, source, self.observer)
