"""README snippets and example scripts run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = re.compile(r"```python\n(.*?)```", re.S)


def _snippets(doc: Path) -> list[str]:
    return SNIPPET.findall(doc.read_text())


@pytest.mark.parametrize("doc", ["README.md", "docs/atomic-writes.md", "docs/segmentdb.md",
                                 "docs/migrating-from-aiodiskdb.md", "docs/s3.md",
                                 "docs/tables.md", "docs/sql.md", "docs/store.md",
                                 "docs/migrating-from-autostore.md"])
def test_python_snippets_run(doc: str, tmp_path: Path) -> None:
    snippets = _snippets(ROOT / doc)
    assert snippets, f"{doc} has no python snippet"
    for code in snippets:
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"{doc} snippet failed:\n{code}\n{result.stderr}"


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make run", "make test"]
    assert text.index("make run") < text.index("```python")


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_example_runs(script: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
