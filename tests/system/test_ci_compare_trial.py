"""
CI's C{.ci/compare_trial.py}: it reads trial's per-test outcomes, and fails
exactly when Twisted's suite has a different outcome under C{netepoll} than
under stock epoll.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "compare_trial.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_trial", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare_trial"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


compare_trial = load()

RULE = "=" * 79
DASHES = "-" * 79

OUTPUT = f"""\
twisted.test.test_a.ATests.test_ok ... [OK]
twisted.test.test_a.ATests.test_prints ... some output of the test
with [brackets] and a second line
[OK]
twisted.test.test_a.ATests.test_fails ... [FAILURE]
twisted.test.test_a.ATests.test_dirty ... [FAILURE][ERROR]
twisted.test.test_b ... [ERROR]
twisted.test.test_c.CTests.test_skip ... [SKIPPED]
twisted.test.test_c.CTests.test_todo ... [TODO]


{RULE}
[SKIPPED]
Not on this platform

twisted.test.test_c.CTests.test_skip
{RULE}
[ERROR]
Traceback (most recent call last):
builtins.ModuleNotFoundError: No module named 'hamcrest'

twisted.test.test_b
{DASHES}
Ran 7 tests in 0.123s

FAILED (skips=1, expectedFailures=1, failures=2, errors=2, successes=2)
"""


def test_parse_reads_each_test_outcome() -> None:
    run = compare_trial.parse(OUTPUT)
    assert run.ran == 7
    assert run.outcomes == {
        "twisted.test.test_a.ATests.test_ok": "OK",
        "twisted.test.test_a.ATests.test_prints": "OK",
        "twisted.test.test_a.ATests.test_fails": "FAILURE",
        "twisted.test.test_a.ATests.test_dirty": "FAILURE+ERROR",
        "twisted.test.test_b": "ERROR",
        "twisted.test.test_c.CTests.test_skip": "SKIPPED",
        "twisted.test.test_c.CTests.test_todo": "TODO",
    }
    assert run.counts()["OK"] == 2


@pytest.mark.parametrize(
    "text, problem",
    [
        (OUTPUT.split(DASHES)[0], "did not finish"),
        (OUTPUT.replace("Ran 7 tests", "Ran 8 tests"), "ran 8 tests but 7 were read"),
        (f"{DASHES}\nRan 0 tests in 0.001s\n\nPASSED\n", "ran no test"),
    ],
)
def test_parse_refuses_an_incomplete_run(text: str, problem: str) -> None:
    with pytest.raises(compare_trial.UnreadableError, match=problem):
        compare_trial.parse(text)


def test_differences_per_test_id() -> None:
    first = compare_trial.Run({"a.b.test_x": "OK", "a.b.test_y": "FAILURE", "a.c": "ERROR"}, 3)
    second = compare_trial.Run({"a.b.test_x": "OK", "a.b.test_y": "OK", "a.d.test_z": "OK"}, 3)
    assert compare_trial.differences(first, second) == {
        "a.b.test_y": ("FAILURE", "OK"),
        "a.c": ("ERROR", "absent"),
        "a.d.test_z": ("absent", "OK"),
    }
    assert compare_trial.differences(first, first) == {}


FAKE_TRIAL = """\
#!{python}
# Stands in for trial: outcomes depend on the reactor and on whether the
# test runs alone (a rerun names it); the same totals for both reactors.
import sys
reactor = sys.argv[1].split("=")[1]
alone = "pkg.test_m.T.test_flaky" in sys.argv
tests = {{
    "pkg.test_m.T.test_same": "FAILURE",
    "pkg.test_m.T.test_flaky": "FAILURE" if reactor == "netepoll" and not alone else "OK",
    "pkg.test_m.T.test_broken": "{broken}" if reactor == "netepoll" else "OK",
    "pkg.test_m.T.test_fine": "OK" if reactor == "netepoll" else "{broken}",
}}
if alone:
    tests = {{t: o for t, o in tests.items() if t in sys.argv}}
for test, outcome in tests.items():
    print(f"{{test}} ... [{{outcome}}]")
print("-" * 79)
print(f"Ran {{len(tests)}} tests in 0.001s")
"""


def fake_trial(tmp_path: Path, broken: str) -> str:
    path = tmp_path / "trial"
    path.write_text(FAKE_TRIAL.format(python=sys.executable, broken=broken))
    path.chmod(0o755)
    return str(path)


def test_main_fails_on_a_difference_that_stays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trial = fake_trial(tmp_path, broken="ERROR")
    code = compare_trial.main(["--trial", trial, "--out", str(tmp_path / "out"), "pkg"])
    output = capsys.readouterr().out
    assert code == 1
    assert "flaky, the same when run again: pkg.test_m.T.test_flaky" in output
    assert "pkg.test_m.T.test_broken: epoll OK, netepoll ERROR" in output
    assert "pkg.test_m.T.test_fine: epoll ERROR, netepoll OK" in output
    assert "test_same:" not in output


def test_main_passes_when_only_flaky_tests_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trial = fake_trial(tmp_path, broken="OK")
    code = compare_trial.main(["--trial", trial, "--out", str(tmp_path / "out"), "pkg"])
    output = capsys.readouterr().out
    assert code == 0
    assert "flaky, the same when run again: pkg.test_m.T.test_flaky" in output


def test_main_reports_a_run_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trial = tmp_path / "trial"
    trial.write_text(textwrap.dedent(f"#!{sys.executable}\nraise SystemExit(1)\n"))
    trial.chmod(0o755)
    code = compare_trial.main(["--trial", str(trial), "--out", str(tmp_path / "out"), "pkg"])
    assert code == 2
    assert "trial did not finish" in capsys.readouterr().err


def test_main_finds_a_trial_given_relative_to_the_current_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_trial(tmp_path, broken="OK")
    monkeypatch.chdir(tmp_path)
    assert compare_trial.main(["--trial", "./trial", "--out", "out", "pkg"]) == 0
    assert "--reactor=netepoll: 4 tests" in capsys.readouterr().out


def test_main_names_a_missing_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "no-trial")
    assert compare_trial.main(["--trial", missing, "--out", str(tmp_path / "out"), "pkg"]) == 2
    assert f"no trial executable at {missing}" in capsys.readouterr().err
