"""
The README's "Embedding" example, run as written: the server and the
clients in one Twisted program.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_section(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"<!-- section:{marker} -->")
    following = text.find("<!-- section:", start + 1)
    return text[start : following if following >= 0 else len(text)]


def code_blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_embedding_example_runs_as_written(tmp_path: Path) -> None:
    section = readme_section("embedding")
    [program] = code_blocks(section, "python")
    [expected] = code_blocks(section, "text")
    script = tmp_path / "embedded.py"
    script.write_text(program, encoding="utf-8")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
        env=environment,
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    assert result.stdout.decode("utf-8") == expected
    assert result.stderr == b""
