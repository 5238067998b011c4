"""The JavaScript runtime's unit tests (``tests/js/*.test.mjs``, Node's test runner) as one
pytest test, so that ``make test`` runs them; they need Node only (no npm package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def test_node_unit_tests_pass():
    if shutil.which("node") is None:
        pytest.skip("node is not installed (apt-get install nodejs)")
    files = sorted(str(p) for p in HERE.glob("*.test.mjs"))
    assert files
    done = subprocess.run(
        ["node", "--test", *files], capture_output=True, text=True, timeout=300, cwd=HERE
    )
    summary = [line for line in done.stdout.splitlines() if line.startswith("# ")]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in summary and not any(s == "# pass 0" for s in summary), summary
