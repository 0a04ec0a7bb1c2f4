"""Laravel Echo and pusher-js from npm (tests/js/package.json), driven by Node's own test
runner against a real `leadrelay serve` and soketi: what dashboards run, proven unchanged."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.serve import Serve, cli_json, point_at_soketi
from support.soketi import Soketi

pytestmark = pytest.mark.soketi

JS_DIR = Path(__file__).resolve().parent
NODE = shutil.which("node")


def run_node(files: list[str], context: dict[str, Any], timeout: float = 90) -> None:
    """`node --test FILES` with the daemon's address and tokens; fails with node's report."""
    assert NODE is not None, "node is required (Debian: apt-get install nodejs npm)"
    assert (JS_DIR / "node_modules" / "laravel-echo").is_dir(), "run scripts/install-js-clients"
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


def start_daemon(db: Path, soketi: Soketi, env: dict[str, str] | None = None) -> Serve:
    serve = Serve(db, env=env).start()
    point_at_soketi(db, soketi)
    return serve


def context_for(serve: Serve, **extra: Any) -> dict[str, Any]:
    providers = {
        str(provider_id): cli_json(
            serve.db, "providers", "add", f"P{provider_id}", "--id", str(provider_id)
        )["token"]
        for provider_id in (7, 8)
    }
    return {"url": serve.url, "admin": serve.admin_token, "providers": providers, **extra}


@pytest.fixture
def default_daemon(tmp_path: Path, soketi: Soketi) -> Iterator[Serve]:
    serve = start_daemon(tmp_path / "js.db", soketi)
    try:
        yield serve
    finally:
        serve.kill()


def test_js_clients_echo_and_pusher_js_on_the_default_channels(default_daemon: Serve) -> None:
    context = context_for(default_daemon, admin_channel="admin")
    run_node(["echo.test.mjs", "echo-bearer.test.mjs"], context)
