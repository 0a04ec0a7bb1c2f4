"""The console's pure JavaScript (event merging, the bell's unread state) under `node --test`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).resolve().parents[1] / "js" / "console"


def test_console_js_units_pass_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: scripts/install-soketi installs it with the soketi setup")
    files = sorted(str(path) for path in JS_TESTS.glob("*.test.mjs"))
    assert len(files) >= 2, files
    result = subprocess.run(
        [node, "--test", *files], capture_output=True, text=True, timeout=60, cwd=JS_TESTS
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
