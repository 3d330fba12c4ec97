#!/usr/bin/env python3
"""
Run Twisted's own test suite under two reactors and fail when any test's
outcome differs between them.

This is how CI checks that C{twist --reactor netepoll} is a drop-in for
Twisted's stock epoll reactor: both runs use the same C{trial}, the same
test modules and the same machine, so whatever fails for reasons of the
machine (the permission tests fail under root, for instance) fails under
both and cancels out.  Outcomes are compared per test id, read from
C{trial --reporter=bwverbose} (one C{<id> ... [OK]} line per test), not as
totals.  A test whose outcome differs is run again, alone, under both
reactors; only a difference that stays is reported as one, the others are
listed as flaky.

    python .ci/compare_trial.py --trial .venv/bin/trial --out build/trial \\
        twisted.test twisted.web.test twisted.protocols.test twisted.names.test

Exit status: 0 when the outcomes agree, 1 when they differ, 2 when a run
could not be read (trial crashed, timed out, or ran no test).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = re.compile(r"\[(OK|FAIL|FAILURE|ERROR|SKIPPED|TODO|SUCCESS!\?!)\]")
"""The outcome marks of trial's verbose reporters."""

START = re.compile(r"^([A-Za-z_]\w*(?:\.\w+)+) \.\.\. ")
"""A test starting: its dotted id, then C{ ... } (bwverbose)."""

RAN = re.compile(r"^Ran (\d+) tests? in ")

SEPARATORS = ("=" * 79, "-" * 79)
"""The rules trial prints before its error listing and its totals."""

NO_OUTCOME = "NONE"


@dataclass
class Run:
    """
    One trial run, read back: the outcome of each test id, and the count
    trial itself printed.
    """

    outcomes: dict[str, str] = field(default_factory=dict)
    ran: int | None = None

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())


class UnreadableError(Exception):
    """
    A run's output is not a complete trial run.
    """


def parse(text: str) -> Run:
    """
    Read C{trial --reporter=bwverbose} output.

    Each test is a line C{<id> ... } followed by one or more marks
    (C{[OK]}, C{[FAILURE]}, C{[ERROR]}, ...; a test can collect more than
    one, such as a failure and a cleanup error).  Anything a test prints
    lands between its id and its marks and is skipped.  A module that cannot
    be imported is reported under the module's id.  The per-test lines end
    at trial's first separator rule; its C{Ran N tests} line must follow.

    @raise UnreadableError: when C{Ran N tests} is missing or disagrees with the
        number of tests read.
    """
    run = Run()
    marks: dict[str, list[str]] = {}
    current: str | None = None
    listing = True
    for line in text.splitlines():
        if listing and line.rstrip() in SEPARATORS:
            listing = False
            current = None
        if listing:
            started = START.match(line)
            if started:
                current = started.group(1)
                marks.setdefault(current, [])
                line = line[started.end() :]
            if current is not None:
                marks[current].extend(TOKEN.findall(line))
            continue
        counted = RAN.match(line)
        if counted:
            run.ran = int(counted.group(1))
    run.outcomes = {test: "+".join(found) or NO_OUTCOME for test, found in marks.items()}
    if run.ran is None:
        raise UnreadableError("no 'Ran N tests' line: trial did not finish")
    if run.ran != len(run.outcomes):
        raise UnreadableError(f"trial ran {run.ran} tests but {len(run.outcomes)} were read")
    if run.ran == 0:
        raise UnreadableError("trial ran no test")
    return run


def differences(first: Run, second: Run) -> dict[str, tuple[str, str]]:
    """
    The test ids whose outcomes differ (a test missing from one run counts
    as C{absent} there), with both outcomes.
    """
    found = {}
    for test in sorted(first.outcomes.keys() | second.outcomes.keys()):
        a = first.outcomes.get(test, "absent")
        b = second.outcomes.get(test, "absent")
        if a != b:
            found[test] = (a, b)
    return found


def run_trial(
    trial: str, reactor: str, tests: list[str], out: Path, timeout: float
) -> tuple[Run, float]:
    """
    Run C{trial} under C{reactor} in a directory of its own (its
    C{_trial_temp} and output files go there).

    @return: the run read back, and its wall-clock seconds.
    """
    out.mkdir(parents=True, exist_ok=True)
    found = shutil.which(trial)
    if found is None:
        raise UnreadableError(f"no trial executable at {trial}")
    trial = str(Path(found).resolve())  # it runs in out, so not relative to here
    began = time.monotonic()
    with (out / "stdout.txt").open("wb") as stdout, (out / "stderr.txt").open("wb") as stderr:
        try:
            subprocess.run(
                [trial, f"--reactor={reactor}", "--reporter=bwverbose", *tests],
                cwd=out,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise UnreadableError(f"trial --reactor={reactor} ran over {timeout:.0f} s") from None
    text = (out / "stdout.txt").read_text(errors="replace")
    try:
        return parse(text), time.monotonic() - began
    except UnreadableError as error:
        where = out / "stdout.txt"
        raise UnreadableError(f"trial --reactor={reactor} ({where}): {error}") from None


def table(names: list[str], runs: list[Run]) -> str:
    """
    Counts per outcome, one column per reactor.
    """
    kinds = sorted(set().union(*(r.counts() for r in runs)))
    lines = [f"{'outcome':<14}" + "".join(f"{n:>12}" for n in names)]
    for kind in kinds:
        lines.append(f"{kind:<14}" + "".join(f"{r.counts()[kind]:>12}" for r in runs))
    lines.append(f"{'total':<14}" + "".join(f"{len(r.outcomes):>12}" for r in runs))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", nargs="+", help="test modules or packages for trial")
    parser.add_argument("--trial", default="trial", help="the trial executable")
    parser.add_argument("--reactors", default="epoll,netepoll", help="two, reference first")
    parser.add_argument("--out", type=Path, default=Path("build/trial"), help="output directory")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per trial run")
    parser.add_argument(
        "--max-reruns", type=int, default=100, help="rerun at most this many differing tests"
    )
    options = parser.parse_args(argv)
    names = options.reactors.split(",")
    if len(names) != 2:
        parser.error("--reactors wants two names, such as epoll,netepoll")
    try:
        runs = []
        for name in names:
            run, seconds = run_trial(
                options.trial, name, options.tests, options.out / name, options.timeout
            )
            print(f"trial --reactor={name}: {len(run.outcomes)} tests in {seconds:.0f} s")
            runs.append(run)
        print(table(names, runs))
        found = differences(*runs)
        if not found:
            print(f"same outcome for all {len(runs[0].outcomes)} tests under {' and '.join(names)}")
            return 0
        print(f"{len(found)} tests differ; running them again, alone, under both reactors")
        if len(found) > options.max_reruns:
            confirmed = found
        else:
            again = [
                run_trial(options.trial, name, list(found), options.out / f"{name}-rerun", 600)[0]
                for name in names
            ]
            confirmed = {t: found[t] for t in differences(*again) if t in found}
            for test in sorted(found.keys() - confirmed.keys()):
                print(f"flaky, the same when run again: {test} {found[test]}")
    except UnreadableError as error:
        print(f"compare_trial: error: {error}", file=sys.stderr)
        return 2
    if not confirmed:
        return 0
    print(f"{len(confirmed)} tests differ between {names[0]} and {names[1]}:")
    for test, (a, b) in confirmed.items():
        print(f"  {test}: {names[0]} {a}, {names[1]} {b}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
