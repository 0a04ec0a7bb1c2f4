"""`providers list` says who is watching in words: now, how long ago, or never."""

from __future__ import annotations

import time
from pathlib import Path

from typer.testing import CliRunner

from leadrelay import events
from leadrelay.accounts import watching_in_words
from leadrelay.cli.main import app
from support.database import execute

runner = CliRunner()


def test_providers_list_watching_column_in_words(tmp_path: Path) -> None:
    db = str(tmp_path / "leadrelay.db")
    for args in (["init"], ["providers", "add", "Here"], ["providers", "add", "Left"],
                 ["providers", "add", "Unseen"]):  # fmt: skip
        assert runner.invoke(app, [*args, "--db", db]).exit_code == 0
    now_iso = events.iso_time(time.time())
    execute(db, "UPDATE providers SET watching = 1, last_seen = ? WHERE id = 1", now_iso)
    three_min_ago = events.iso_time(time.time() - 185)
    execute(db, "UPDATE providers SET last_seen = ? WHERE id = 2", three_min_ago)

    listed = runner.invoke(app, ["providers", "list", "--db", db])
    assert listed.exit_code == 0, listed.stderr

    def row(name: str) -> str:
        return next(line for line in listed.stdout.splitlines() if f" {name} " in line)

    assert "watching now" in row("Here")
    assert "last seen 3 min ago" in row("Left")
    assert "never seen" in row("Unseen")


def test_watching_in_words_units() -> None:
    def said(seconds_ago: float) -> str:
        now = 1_800_000_000.0
        row = {"watching": False, "last_seen": events.iso_time(now - seconds_ago)}
        return watching_in_words(row, now)

    assert said(0) == "last seen 0 s ago"
    assert said(59) == "last seen 59 s ago"
    assert said(60) == "last seen 1 min ago"
    assert said(2 * 3600) == "last seen 2 h ago"
    assert said(3 * 86400) == "last seen 3 days ago"
    assert said(-30) == "last seen 0 s ago"  # a clock ahead of ours is not the future
    assert watching_in_words({"watching": False, "last_seen": None}, 0) == "never seen"
