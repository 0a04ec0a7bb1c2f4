"""The CLI of CONTRACT §3: every command, --json for scripts, one-line errors; each command
that reads or writes the database on both backends (`--db PATH` and `--db postgresql://…`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from leadrelay.cli.main import app
from support.database import execute, rows
from support.serve import Serve

pytestmark = pytest.mark.both_backends

runner = CliRunner()


def invoke(db: Path | str, *args: str, code: int = 0, stdin: str | None = None) -> Any:
    result = runner.invoke(app, [*args, "--db", str(db)], input=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def as_json(db: Path | str, *args: str) -> Any:
    result = invoke(db, *args, "--json")
    return json.loads(result.stdout)  # nothing but the JSON document on stdout


@pytest.fixture
def cli_db(db: Path | str) -> Path | str:
    """The test's database, created as an operator first does."""
    assert "admin token" in invoke(db, "init").stdout
    return db


def test_every_command_has_help() -> None:
    def walk(command: Any) -> list[Any]:
        found = [command]
        for sub in getattr(command, "commands", {}).values():
            found.extend(walk(sub))
        return found

    commands = walk(typer.main.get_command(app))
    assert len(commands) > 20
    for command in commands:
        assert command.help, f"{command.name} has no help"


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from leadrelay.cli.main import app; "
        "heavy = {'aiosqlite', 'starlette', 'uvicorn', 'pusher', 'httpx', 'websockets'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_leads_commands(cli_db: Path | str) -> None:
    provider = as_json(cli_db, "providers", "add", "Acme", "--id", "7")
    assert provider["id"] == 7 and set(provider) == {"id", "name", "token"}
    lead = as_json(
        cli_db, "leads", "create", "--name", "Ada", "--email", "a@example.com", "--provider", "7"
    )
    assert lead["status"] == "new" and lead["provider_id"] == 7
    assert [row["id"] for row in as_json(cli_db, "leads", "list")] == [lead["id"]]
    assert as_json(cli_db, "leads", "list", "--status", "lost") == []
    assert as_json(cli_db, "leads", "show", str(lead["id"]))["email"] == "a@example.com"
    changed = as_json(cli_db, "leads", "status", str(lead["id"]), "contacted")
    assert changed["status"] == "contacted"
    second = as_json(cli_db, "providers", "add", "Bolt")
    moved = as_json(cli_db, "leads", "assign", str(lead["id"]), str(second["id"]))
    assert moved["provider_id"] == second["id"]
    human = invoke(cli_db, "leads", "list")
    assert "Ada" in human.stdout and "contacted" in human.stdout
    outbox = as_json(cli_db, "outbox", "status")
    assert outbox["pending"] == 3 and outbox["total"] == 3  # assigned, status, assigned


def test_cli_errors_are_one_line_and_non_zero(cli_db: Path | str, tmp_path: Path) -> None:
    unknown = invoke(cli_db, "leads", "status", "1", "won", code=1)
    assert unknown.stderr.startswith("error: ") and "won" in unknown.stderr
    missing = invoke(cli_db, "leads", "show", "99", code=1)
    assert "no lead 99" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad_email = invoke(cli_db, "leads", "create", "--name", "x", "--email", "nope", code=1)
    assert "email" in bad_email.stderr
    no_provider = invoke(cli_db, "leads", "create", "--name", "x", "--provider", "9", code=1)
    assert "provider 9 does not exist" in no_provider.stderr
    taken = invoke(cli_db, "providers", "add", "Again", "--id", "1", code=0)
    assert taken.exit_code == 0
    again = invoke(cli_db, "providers", "add", "Again", "--id", "1", code=1)
    assert "already exists" in again.stderr
    nodb = invoke(tmp_path / "absent.db", "leads", "list", code=2)
    assert "no database" in nodb.stderr
    assert invoke(cli_db, "tokens", "create", code=1).stderr.startswith("error: ")


def test_tokens_are_shown_once_and_stored_hashed(cli_db: Path | str) -> None:
    token = as_json(cli_db, "tokens", "create", "--admin")["token"]
    assert token.startswith("lr_")
    listed = as_json(cli_db, "tokens", "list")
    assert all(token not in json.dumps(row) for row in listed)
    assert any(token.startswith(row["prefix"]) for row in listed)
    stored = rows(cli_db, "SELECT * FROM tokens")
    assert len(stored) == 2 and token not in json.dumps(stored)  # init's and this one
    if isinstance(cli_db, Path):
        assert token.encode() not in cli_db.read_bytes()
    invoke(cli_db, "tokens", "revoke", token[:10])
    assert invoke(cli_db, "tokens", "revoke", token[:10], code=1).stderr.startswith("error: ")
    provider = as_json(cli_db, "providers", "add", "Acme")
    extra = as_json(cli_db, "providers", "token", str(provider["id"]))
    assert extra["token"] != provider["token"]
    assert [p["name"] for p in as_json(cli_db, "providers", "list")] == ["Acme"]


def test_pusher_commands_mask_the_secret(cli_db: Path | str) -> None:
    secret = "a-very-secret-value-123"
    shown = as_json(
        cli_db,
        "pusher",
        "set",
        "--app-id",
        "123",
        "--key",
        "k",
        "--secret",
        secret,
        "--cluster",
        "eu",
    )
    assert shown["secret"] != secret and secret not in json.dumps(shown)
    from_stdin = invoke(
        cli_db, "pusher", "set", "--secret", "-", "--json", stdin="other-secret-456\n"
    )
    assert "other-secret-456" not in from_stdin.stdout
    human = invoke(cli_db, "pusher", "show")
    assert "other-secret-456" not in human.stdout and "eu" in human.stdout
    assert as_json(cli_db, "pusher", "enable")["enabled"] is True
    assert as_json(cli_db, "pusher", "disable")["enabled"] is False
    assert "app id" in invoke(cli_db, "pusher", "set", "--app-id", "abc", code=1).stderr
    assert invoke(cli_db, "pusher", "set", code=1).stderr.startswith("error: ")


def test_pusher_settings_seeded_from_laravel_env(db: Path | str) -> None:
    env = {
        "PUSHER_APP_ID": "4242",
        "PUSHER_APP_KEY": "envkey",
        "PUSHER_APP_SECRET": "env-secret-value",
        "PUSHER_APP_CLUSTER": "eu",
    }
    with Serve(db, relay="off", env=env):
        pass
    shown = as_json(db, "pusher", "show")
    assert shown["app_id"] == "4242" and shown["cluster"] == "eu" and shown["enabled"] is True


def test_outbox_failed_and_retry(cli_db: Path | str) -> None:
    as_json(cli_db, "leads", "create", "--name", "x")
    execute(cli_db, "UPDATE events SET state = 'dead', last_error = 'HTTP 413: too large'")
    failed = as_json(cli_db, "outbox", "failed")
    assert [e["last_error"] for e in failed["dead"]] == ["HTTP 413: too large"]
    assert "413" in invoke(cli_db, "outbox", "failed").stdout
    event_id = str(failed["dead"][0]["id"])
    invoke(cli_db, "outbox", "retry", event_id)
    assert as_json(cli_db, "outbox", "status")["pending"] == 1
    assert invoke(cli_db, "outbox", "retry", "--all", code=1).stderr.startswith("error: nothing")
    assert invoke(cli_db, "outbox", "retry", code=1).stderr.startswith("error: ")


def test_webhooks_secret_and_sign(cli_db: Path | str, tmp_path: Path) -> None:
    secret = as_json(cli_db, "webhooks", "secret")["secret"]
    assert secret.startswith("whsec_")
    assert as_json(cli_db, "webhooks", "secret")["secret"] == secret
    body = tmp_path / "lead.json"
    body.write_bytes(b'{"name":"Signed"}')
    headers = as_json(cli_db, "webhooks", "sign", str(body))
    from leadrelay.web import webhooks

    assert webhooks.verify([secret], headers, body.read_bytes()) == headers["webhook-id"]
    curl = invoke(cli_db, "webhooks", "sign", str(body)).stdout
    assert "-H 'webhook-signature: v1," in curl
    rotated = as_json(cli_db, "webhooks", "secret", "--rotate")["secret"]
    assert rotated != secret
    assert webhooks.verify(
        [rotated], as_json(cli_db, "webhooks", "sign", str(body)), body.read_bytes()
    )


def test_doctor_names_what_to_fix(cli_db: Path | str) -> None:
    result = invoke(cli_db, "doctor", "--json", code=1)
    report = json.loads(result.stdout)
    by_name = {check["name"]: check for check in report["checks"]}
    assert by_name["database"]["status"] == "ok"
    assert by_name["pusher settings"]["status"] == "fail"
    assert "leadrelay pusher set" in by_name["pusher settings"]["detail"]
    assert by_name["outbox ledger"]["status"] == "ok"
    human = invoke(cli_db, "doctor", code=1)
    assert "FAIL" in human.stdout


def test_serve_prints_a_one_time_admin_token(db: Path | str) -> None:
    with Serve(db, relay="off") as first:
        token = first.admin_token
        assert token is not None
        import httpx

        response = httpx.get(f"{first.url}/api/admin/leads", headers=first.auth())
        assert response.status_code == 200
    second = Serve(db, relay="off")
    second.start()
    try:
        assert second.admin_token != token  # no new token printed: one was made via the CLI
    finally:
        second.kill()
