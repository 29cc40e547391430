"""examples/store.py against a local S3 server (``--s3``); tests/test_docs.py runs it locally."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_runs_on_s3(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "store.py"), "--s3",
                             str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "cached get after another writer's change: {'loss': 0.2}" in result.stdout
