"""First run: `leadrelay init`, a missing database, `--version`, `--db` before the command."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from leadrelay import __version__
from leadrelay.cli.main import app
from support.serve import Serve

runner = CliRunner()


def test_init_creates_a_private_database_and_prints_the_token_once(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    first = runner.invoke(app, ["init", "--db", str(db), "--json"])
    assert first.exit_code == 0, first.stderr
    made = json.loads(first.stdout)
    assert made["created"] is True and made["token"].startswith("lr_")
    assert made["db"] == str(db.absolute())
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600

    again = runner.invoke(app, ["init", "--db", str(db)])
    assert again.exit_code == 0
    assert "already exists" in again.stderr and "lr_" not in again.stdout + again.stderr
    tokens = json.loads(runner.invoke(app, ["tokens", "list", "--db", str(db), "--json"]).stdout)
    assert [t["role"] for t in tokens] == ["admin"]  # the second init made no token


@pytest.mark.parametrize(
    "command",
    [
        ["leads", "list"],
        ["leads", "show", "1"],
        ["leads", "create", "--name", "Ada"],
        ["providers", "add", "Acme"],
        ["providers", "list"],
        ["tokens", "create", "--admin"],
        ["tokens", "list"],
        ["pusher", "show"],
        ["pusher", "set", "--key", "k"],
        ["pusher", "enable"],
        ["outbox", "status"],
        ["outbox", "failed"],
        ["webhooks", "secret"],
        ["test-connection"],
        ["doctor"],
    ],
)
def test_commands_on_a_missing_database_say_to_run_init(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "absent.db"
    result = runner.invoke(app, [*command, "--db", str(db)])
    assert result.exit_code != 0
    text = result.stdout + result.stderr
    assert "leadrelay init" in text and str(db.absolute()) in text
    assert "Traceback" not in text
    assert not db.exists()  # nothing but init (and serve) creates it


def test_version_is_printed() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"leadrelay {__version__}"


def test_db_is_accepted_before_the_command(tmp_path: Path) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    for db in (first, second):
        assert runner.invoke(app, ["--db", str(db), "init"]).exit_code == 0
    added = runner.invoke(app, ["--db", str(first), "providers", "add", "Acme", "--json"])
    assert added.exit_code == 0, added.stderr
    listed = runner.invoke(app, ["--db", str(first), "providers", "list", "--json"])
    assert [p["name"] for p in json.loads(listed.stdout)] == ["Acme"]
    # the command's own --db wins over the one before it
    other = runner.invoke(
        app, ["--db", str(first), "providers", "list", "--db", str(second), "--json"]
    )
    assert json.loads(other.stdout) == []


def test_setup_before_the_first_serve(tmp_path: Path) -> None:
    db = tmp_path / "setup.db"
    token = json.loads(runner.invoke(app, ["init", "--db", str(db), "--json"]).stdout)["token"]
    pusher = runner.invoke(
        app,
        ["pusher", "set", "--app-id", "1", "--key", "k", "--secret", "s", "--db", str(db)],
    )
    assert pusher.exit_code == 0, pusher.stderr
    provider = json.loads(
        runner.invoke(app, ["providers", "add", "Acme", "--db", str(db), "--json"]).stdout
    )
    extra = runner.invoke(app, ["tokens", "create", "--admin", "--db", str(db), "--json"])
    assert extra.exit_code == 0, extra.stderr

    with Serve(db, relay="off") as server:
        assert "lr_" not in "".join(server.stdout)  # init's token was the first: serve made none
        auth = {"Authorization": f"Bearer {token}"}
        lead = httpx.post(
            f"{server.url}/api/leads",
            json={"name": "Ada", "provider_id": provider["id"]},
            headers=auth,
        )
        assert lead.status_code == 201
        settings = httpx.get(f"{server.url}/api/admin/settings/pusher", headers=auth).json()
        assert settings["app_id"] == "1" and settings["key"] == "k"
        mine = httpx.get(
            f"{server.url}/api/provider/leads",
            headers={"Authorization": f"Bearer {provider['token']}"},
        ).json()
        assert [row["name"] for row in mine["leads"]] == ["Ada"]
