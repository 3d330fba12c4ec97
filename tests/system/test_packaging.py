"""
Packaging: an installed (not editable) twisted-net exposes the C{net}
plugin to Twisted, and ships no C{__init__.py} that would shadow Twisted's
own C{twisted} or C{twisted.plugins} packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import installed_script

REPO = Path(__file__).resolve().parents[2]

FIND_PLUGIN = """
import json
import twisted
import twisted.plugins
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
import twisted_net

found = {p.tapname: p.description for p in getPlugins(IServiceMaker)}
print(json.dumps({
    "found": found,
    "twisted": twisted.__file__,
    "package": twisted_net.__file__,
    "plugin": getattr(twisted.plugins.twisted_net, "__file__", None),
}))
"""


def clean_environment(**extra: str) -> dict[str, str]:
    """
    The test's environment without anything that would put the source tree
    on C{sys.path}.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env


def find_plugin(cwd: Path, *options: str, **env: str) -> dict[str, object]:
    """
    Ask a fresh interpreter (with C{options}), started away from the source
    tree, which C{IServiceMaker} plugins Twisted finds.
    """
    result = subprocess.run(
        [sys.executable, *options, "-c", FIND_PLUGIN],
        cwd=cwd,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_no_init_in_twisted_or_plugins() -> None:
    """
    The repository has no C{twisted/__init__.py} nor
    C{twisted/plugins/__init__.py}: either would shadow Twisted itself.
    """
    assert (REPO / "twisted" / "plugins" / "twisted_net.py").is_file()
    assert not (REPO / "twisted" / "__init__.py").exists()
    assert not (REPO / "twisted" / "plugins" / "__init__.py").exists()


def test_installed_plugin_is_found(tmp_path: Path) -> None:
    """
    In the environment the tests run in, run from a temporary directory
    (so the source tree is not on C{sys.path}), Twisted finds C{net}.
    """
    answer = find_plugin(tmp_path)
    assert "net" in answer["found"]  # type: ignore[operator]
    assert answer["plugin"] is not None


def test_twist_help_lists_net(tmp_path: Path) -> None:
    """
    C{twist --help} lists the C{net} plugin with its description.
    """
    result = subprocess.run(
        [installed_script("twist"), "--help"],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert any(words[:1] == ["net"] for words in lines), result.stdout
    assert "greeting server" in result.stdout


def test_fresh_non_editable_install_exposes_plugin(tmp_path: Path) -> None:
    """
    C{pip install --target} of a copy of the tree, then an interpreter that
    sees only that target (C{python -S}: no site-packages): Twisted, found
    there, finds C{net} in the installed files, and no C{__init__.py} was
    installed into C{twisted/} (beyond Twisted's own) or C{twisted/plugins/}.

    A slow proof (about 10 s): it installs the dependencies too, from the
    configured package index or cache.
    """
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            ".mypy_cache",
            ".ruff_cache",
            ".hypothesis",
            "dropin.cache",
        ),
    )
    target = tmp_path / "target"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(target),
            str(source),
        ],
        env=clean_environment(PIP_DISABLE_PIP_VERSION_CHECK="1"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    record = next(target.glob("twisted_net-*.dist-info")) / "RECORD"
    installed = {line.split(",")[0] for line in record.read_text().splitlines()}
    assert "twisted/plugins/twisted_net.py" in installed
    assert "twisted/__init__.py" not in installed
    assert "twisted/plugins/__init__.py" not in installed

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    answer = find_plugin(elsewhere, "-S", PYTHONPATH=str(target))
    assert "net" in answer["found"]  # type: ignore[operator]
    for module in ("twisted", "package", "plugin"):
        assert str(answer[module]).startswith(str(target)), answer
