"""
The README's shell commands, checked where that is cheap and exact: every
C{twist} and C{twisted-net} command line in its C{sh} and C{console} blocks
parses (option names, their values, endpoint strings), every file of the
repository it names exists, and its table of stable log events lists what
the code logs.  Nothing is started: running the commands is the end-to-end
tests' job.
"""

from __future__ import annotations

import functools
import glob
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from support import installed_script
from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor
from twisted.python import usage

from twisted_net import tap
from twisted_net.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

PROGRAMS = {"twist", "twisted-net"}
WRAPPERS = {"sudo": set(), "exec": set(), "taskset": {"-c"}, "systemd-socket-activate": {"-l"}}
"""Commands that run the command that follows their own options, and
which of those options take a value."""

SEPARATORS = {"|", "||", "&", "&&", ";"}
REDIRECTIONS = {"<", ">", ">>"}

PARSED_ENDPOINTS = ("tcp:", "tcp6:", "unix:", "haproxy:tcp:", "haproxy:tcp6:")
"""Endpoint types parsed here: the others read files (C{ssl:}) or the
environment (C{systemd:}) when parsed."""


def shell_lines(text: str) -> list[str]:
    """
    The command lines of the C{sh} and C{console} blocks (in a console block,
    the lines after a C{$} prompt), continuation lines joined.
    """
    lines = []
    for language, block in re.findall(r"```(sh|console)\n(.*?)```", text, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            if not pending and language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            lines.append(pending + line)
            pending = ""
    return lines


def simple_commands(line: str) -> list[list[str]]:
    """
    The words of each simple command of a shell line, as the shell splits
    them (quotes removed, comments and redirections dropped).
    """
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    redirected = False
    for token in lexer:
        if token in SEPARATORS:
            commands.append([])
        elif token in REDIRECTIONS:
            redirected = True
        elif redirected:
            redirected = False
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def program_command(words: list[str]) -> list[str] | None:
    """
    C{[program, *arguments]} when the command runs C{twist} or
    C{twisted-net} (by any path, possibly through a wrapper such as
    C{sudo}), else C{None}.
    """
    first = Path(words[0]).name
    if first in PROGRAMS:
        return [first, *words[1:]]
    if first in WRAPPERS:
        index = 1
        while index < len(words) and words[index].startswith("-"):
            index += 2 if words[index] in WRAPPERS[first] else 1
        if index < len(words):
            return program_command(words[index:])
    return None


README_COMMANDS = [
    command
    for line in shell_lines(README)
    for words in simple_commands(line)
    if (command := program_command(words)) is not None
]


@functools.cache
def twist_options() -> dict[str, tuple[bool, list[str]]]:
    """
    The options of the installed C{twist}, from its C{--help}: for each
    long name, whether it takes a value, and the values it lists.
    """
    shown = subprocess.run(
        [installed_script("twist"), "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    options_part = shown.split("Commands:")[0]
    found: dict[str, tuple[bool, list[str]]] = {}
    for name, takes, description in re.findall(
        r"^\s+--([a-z-]+)(=?)(.*?)(?=^\s+--|\Z)", options_part, flags=re.MULTILINE | re.DOTALL
    ):
        listed = re.search(r"options: ([^;)]*)", " ".join(description.split()))
        values = re.findall(r'"([^"]+)"', listed.group(1)) if listed else []
        found[name] = (takes == "=", values)
    return found


class DryNetOptions(tap.Options):
    """
    C{twist net}'s options, each option and value parsed as the program
    parses it, without the checks of the finished command line that open
    files, sockets or a reactor.
    """

    def postOptions(self) -> None:
        pass


def check_endpoint(description: str) -> None:
    if description.startswith(PARSED_ENDPOINTS):
        serverFromString(MemoryReactor(), description)


def check_twist(arguments: list[str], known: dict[str, tuple[bool, list[str]]]) -> None:
    """
    Check a C{twist} command line: its own options, then the C{net}
    plugin's (another plugin's command line goes through C{twist}'s own
    parser whole).
    """
    index = 0
    while index < len(arguments) and arguments[index].startswith("-"):
        name, equals, value = arguments[index][2:].partition("=")
        assert name in known, f"twist has no option --{name}"
        takes_value, values = known[name]
        if takes_value and not equals:
            index += 1
            value = arguments[index]
        if values:
            assert value in values, f"twist --{name}: {value!r} is not one of {values}"
        index += 1
    if index == len(arguments):
        return
    if arguments[index] != "net":
        # Another Twisted plugin (twist web, for netepoll): its own parser.
        from twisted.application.service import IServiceMaker
        from twisted.plugin import getPlugins

        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        assert arguments[index] in makers, f"twist has no plugin {arguments[index]!r}"
        makers[arguments[index]].options().parseOptions(arguments[index + 1 :])
        return
    options = DryNetOptions()
    options.parseOptions(arguments[index + 1 :])
    for description in [*options["listen"], *filter(None, [options["metrics"]])]:
        try:
            check_endpoint(description)
        except Exception as error:
            raise usage.UsageError(f"bad endpoint {description!r}: {error}") from None


def test_the_readme_runs_both_programs() -> None:
    """
    The extraction finds the README's commands (a check that finds nothing
    would pass for ever).
    """
    programs = [command[0] for command in README_COMMANDS]
    assert programs.count("twist") >= 10
    assert programs.count("twisted-net") >= 10


@pytest.mark.parametrize(
    "command", README_COMMANDS, ids=[" ".join(command)[:70] for command in README_COMMANDS]
)
def test_readme_command_parses(command: list[str]) -> None:
    """
    Each C{twist} / C{twisted-net} command line of the README is accepted
    by the program's own option parser, with the values it gives.
    """
    program, *arguments = command
    if program == "twist":
        try:
            check_twist(arguments, twist_options())
        except usage.UsageError as error:
            pytest.fail(f"twist {shlex.join(arguments)}: {error}")
    else:
        try:
            build_parser(arguments).parse_args(arguments)
        except SystemExit as exit:
            assert exit.code == 0, f"twisted-net {shlex.join(arguments)}: usage error"


def test_shell_quoting_is_needed_for_escaped_colons() -> None:
    """
    The rule the README states: an unquoted C{\\:} is eaten by the shell,
    and what is left is not the endpoint meant.
    """
    [[_, unquoted]] = simple_commands(r"echo tcp6:9999:interface=\:\:1")
    [[_, quoted]] = simple_commands(r"echo 'tcp6:9999:interface=\:\:1'")
    check_endpoint(quoted)
    with pytest.raises(TypeError):
        check_endpoint(unquoted)


def repository_paths(text: str) -> set[str]:
    """
    The repository files and directories a text names, such as
    C{deploy/haproxy/haproxy.cfg} or C{tests/system/test_deploy_*.py}
    (not what a build makes, under C{benchmarks/build} and
    C{benchmarks/results}).
    """
    found = re.findall(
        r"(?<![\w/.-])((?:twisted_net|twisted|tests|deploy|benchmarks|\.ci)/[\w./*-]*[\w*/])",
        text,
    )
    return {
        path for path in found if not path.startswith(("benchmarks/build", "benchmarks/results"))
    }


def test_readme_paths_exist() -> None:
    """
    Every file or directory of the repository that the README names is
    there (files move; the README must follow).
    """
    paths = repository_paths(README)
    assert "deploy/haproxy/haproxy.cfg" in paths
    missing = sorted(path for path in paths if not glob.glob(str(ROOT / path)))
    assert missing == []


def logged_events() -> set[str]:
    """
    The C{event} names the code logs.
    """
    found: set[str] = set()
    for module in (ROOT / "twisted_net").rglob("*.py"):
        found.update(re.findall(r'\bevent="([a-z_]+)"', module.read_text(encoding="utf-8")))
    return found


def documented_events() -> set[str]:
    """
    The C{event} names in the README's table of stable events (under JSON
    logs).
    """
    section = README.split("### JSON logs", 1)[1].split("<!-- section:", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {
        name
        for cell in first_cells
        if cell.strip() != "`event`"  # the header
        for name in re.findall(r"`([a-z_]+)`", cell)
    }


def test_every_logged_event_is_documented() -> None:
    """
    The README's table of stable events names exactly the events the code
    logs: a new event needs its row (name, when, fields).
    """
    logged = logged_events()
    assert {"connection_opened", "worker_started"} <= logged
    assert sorted(logged - documented_events()) == [], "logged, not in the README's table"
    assert sorted(documented_events() - logged) == [], "in the README's table, never logged"
