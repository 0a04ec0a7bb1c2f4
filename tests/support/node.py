"""`node --test` over test files in tests/js, handed a context from the pytest that runs them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parents[1] / "js"
NODE = shutil.which("node")


def run_node(
    files: list[str], context: dict[str, Any], timeout: float = 90, needs: str = "laravel-echo"
) -> None:
    """`node --test FILES` with `context` in LEADRELAY_JS_TEST; fails with node's report.
    `needs`: a package of tests/js/package.json the files import."""
    assert NODE is not None, "node is required (Debian: apt-get install nodejs npm)"
    assert (JS_DIR / "node_modules" / needs).is_dir(), "run scripts/install-js-clients"
    result = subprocess.run(
        [NODE, "--test", "--test-reporter=spec", *files],
        cwd=JS_DIR,
        env={**os.environ, "LEADRELAY_JS_TEST": json.dumps(context)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"
    # the runner's summary: something ran, nothing failed, was skipped or left to do
    summary = dict(
        re.findall(r"^\S+ (tests|pass|fail|skipped|todo|cancelled) (\d+)$", result.stdout, re.M)
    )
    assert int(summary["tests"]) >= len(files) and summary["pass"] == summary["tests"], summary
