"""
Simulates a Twisted whose internals moved, for end-to-end tests: with this
directory on C{PYTHONPATH}, the Twisted modules named in the environment
variable C{NETEPOLL_MOVED_INTERNALS} (a JSON list of C{[module, old, new]})
are loaded from their own source with every C{old} replaced by C{new}.  The
installed Twisted is not touched.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
from typing import Any

_PATCHES: dict[str, list[tuple[str, str]]] = {}
for _module, _old, _new in json.loads(os.environ.get("NETEPOLL_MOVED_INTERNALS", "[]")):
    _PATCHES.setdefault(_module, []).append((_old, _new))


class _PatchedSource(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str) -> Any:
        source = self.get_data(self.path).decode("utf-8")
        for old, new in _PATCHES[fullname]:
            if old not in source:
                raise ImportError(f"simulation: {old!r} is not in {fullname}")
            source = source.replace(old, new)
        return compile(source, self.path, "exec", dont_inherit=True)


class _MovedInternals:
    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        spec.loader = _PatchedSource(fullname, spec.origin)
        return spec


if _PATCHES:
    sys.meta_path.insert(0, _MovedInternals)
