"""
The CPU time and peak memory of the benchmarked server's processes (a
C{--workers} supervisor and its workers), read from C{/proc}.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["process_stats", "process_tree"]


def _stat_fields(pid: int) -> list[str]:
    """
    The fields of C{/proc/PID/stat} after the command name (state first).
    """
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """
    C{pid} and every process descended from it (a C{--workers} supervisor
    and its workers), from C{/proc}.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        tree.append(current)
        waiting.extend(children.get(current, []))
    return tree


def process_stats(pid: int, descendants: bool = True) -> tuple[float, int]:
    """
    CPU seconds used so far and peak RSS (KiB) of a local process, with its
    descendants' added in (a supervisor's workers), unless C{descendants} is
    false.

    @raise OSError: when C{pid} is not a running process.
    """
    cpu, peak = 0.0, 0
    for index, member in enumerate(process_tree(pid) if descendants else [pid]):
        try:
            stat = _stat_fields(member)
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            if index == 0:
                raise
            continue  # a worker that ended meanwhile
        cpu += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak += int(line.split()[1])
    return cpu, peak
