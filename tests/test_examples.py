"""The README's and getting-started's shell examples, run as written, in order, against a real
`leadrelay serve` and soketi: an example that stops working fails the suite.

A comment just before a block changes what the test does with it:
    <!-- example: skip (why) -->     not run (the suite itself, a real Pusher account)
    <!-- example: serve (why) -->    the test starts `leadrelay serve` in the folder here
    <!-- example: soketi (why) -->   the test starts soketi here
What a reader fills in or has on their machine is put in place, and nothing else: the admin
token for `lr_…`, the free ports the test's serve and soketi got for 8000 and 6001, and lines
on stdin for `--secret -`.  Every block runs with `set -euo pipefail`; an answer carrying the
contract's error body (`"error":`) fails it, as the status webhook's 404 would have.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.serve import Serve, cli_json
from support.soketi import Soketi, free_port

pytestmark = [pytest.mark.soketi, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"^<!-- example: (skip|serve|soketi) \((.+)\) -->$")
ASSIGNED = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)
BLOCK_SECONDS = 60


@dataclass
class Block:
    page: str
    line: int
    kind: str  # "run", "skip", "serve" or "soketi"
    text: str


def blocks(page: str) -> list[Block]:
    """The page's ```sh blocks, each with the directive just before it, if any."""
    lines = (REPO / page).read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        if lines[i].strip() in ("```sh", "```bash"):
            start = i
            end = lines.index("```", start + 1)
            before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
            directive = DIRECTIVE.match(before.strip())
            kind = directive.group(1) if directive else "run"
            found.append(Block(page, start + 1, kind, "\n".join(lines[start + 1 : end])))
            i = end
        i += 1
    return found


class Tour:
    """A reader's folder, with the daemon and soketi the examples talk to."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.serve = Serve(folder / "leadrelay.db")
        self.serve.port = free_port()
        self.soketi = Soketi(
            app_id="12345", key="leadrelay-key", secret="leadrelay-secret", port=free_port()
        )
        self.variables: set[str] = set()
        self.state = folder / ".example-state.sh"
        self.state.write_text("")

    def fill_in(self, text: str) -> str:
        text = re.sub(r"(localhost|127\.0\.0\.1):8000", rf"\1:{self.serve.port}", text)
        text = text.replace("6001", str(self.soketi.port))
        if self.serve.admin_token is not None:
            text = text.replace("lr_…", self.serve.admin_token)
        return text

    def run(self, block: Block) -> str:
        where = f"{block.page}:{block.line}"
        if block.kind == "serve":
            self.serve.start()
            return ""
        if block.kind == "soketi":
            self.soketi.start()
            return ""
        self.variables |= set(ASSIGNED.findall(block.text))
        keep = " ".join(sorted(self.variables))
        script = f"set -euo pipefail\nsource {self.state}\n{self.fill_in(block.text)}\n" + (
            f"declare -p {keep} > {self.state}\n" if keep else ""
        )
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        env.pop("LEADRELAY_DB", None)
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.folder,
            env=env,
            input="pusher-secret-from-stdin\n" * 4,
            capture_output=True,
            text=True,
            timeout=BLOCK_SECONDS,
        )
        said = result.stdout + result.stderr
        assert result.returncode == 0, f"{where} exited {result.returncode}:\n{said}"
        assert '"error":' not in said, f"{where} got an error answer:\n{said}"
        assert "Traceback" not in said, f"{where}:\n{said}"
        return said

    def close(self) -> None:
        self.serve.kill()  # and reaped: close() alone left the daemon running
        self.soketi.stop()


def wait_for(condition: object, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_examples_are_marked_known_kinds() -> None:
    for page in ("README.md", "docs/getting-started.md"):
        for block in blocks(page):
            assert block.kind in ("run", "skip", "serve", "soketi"), block


def test_readme_tour_runs_as_written(tmp_path: Path) -> None:
    tour = Tour(tmp_path)
    try:
        said = [tour.run(block) for block in blocks("README.md") if block.kind != "skip"]
        db = tour.serve.db
        lead = cli_json(db, "leads", "show", "--external-id", "crm-42")
        assert lead["status"] == "qualified"  # the status webhook found the tour's lead
        assert any('"applied":true' in out for out in said)
        # what the tour relayed to soketi went out before the move to Pusher
        wait_for(lambda: cli_json(db, "outbox", "status")["delivered"] >= 4, "the drain")
        shown = cli_json(db, "pusher", "show")
        assert shown["server"] == "Pusher, cluster eu: https://api-eu.pusher.com:443"
    finally:
        tour.close()


def test_getting_started_runs_as_written(tmp_path: Path) -> None:
    tour = Tour(tmp_path)
    try:
        for block in blocks("docs/getting-started.md"):
            if block.kind != "skip":
                tour.run(block)
        db = tour.serve.db
        wait_for(lambda: cli_json(db, "outbox", "status")["pending"] == 0, "the drain")
    finally:
        tour.close()
