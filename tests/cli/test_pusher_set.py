"""`pusher set` moves cleanly between a self-hosted server and Pusher's own, and says which."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from leadrelay.cli.main import app
from leadrelay.pusher.config import FIELDS, PusherConfig

runner = CliRunner()


def pusher(db: Path, *args: str, stdin: str | None = None, code: int = 0) -> Any:
    result = runner.invoke(app, ["pusher", *args, "--db", str(db)], input=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def shown(db: Path) -> dict[str, Any]:
    return json.loads(pusher(db, "show", "--json").stdout)


def url_in_force(db: Path) -> str:
    """The URL test-connection (and the relay) would call with the stored settings."""
    stored = shown(db)
    return PusherConfig(**{k: v for k, v in stored.items() if k in FIELDS}).base_url


def test_pusher_set_soketi_then_pusher_then_soketi(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    runner.invoke(app, ["init", "--db", str(db)])
    soketi = ["--host", "127.0.0.1", "--port", "6001", "--scheme", "http"]
    pusher(db, "set", "--app-id", "12345", "--key", "leadrelay-key", "--secret", "s-1", *soketi)
    assert shown(db)["server"] == "self-hosted: http://127.0.0.1:6001"
    assert url_in_force(db) == "http://127.0.0.1:6001"

    # the tour's move to Pusher: --cluster alone, whatever was set before
    pusher(db, "set", "--app-id", "123456", "--key", "KEY", "--secret", "-", "--cluster", "eu",
           stdin="pusher-secret\n")  # fmt: skip
    moved = shown(db)
    assert (moved["host"], moved["port"], moved["scheme"]) == (None, None, "https")
    assert moved["server"] == "Pusher, cluster eu: https://api-eu.pusher.com:443"
    assert url_in_force(db) == "https://api-eu.pusher.com:443"
    assert "Pusher, cluster eu: https://api-eu.pusher.com:443" in pusher(db, "show").stdout

    # and back: --host means self-hosted
    pusher(db, "set", *soketi)
    assert shown(db)["server"] == "self-hosted: http://127.0.0.1:6001"
    assert shown(db)["cluster"] == "eu"  # kept for the clients that name one


def test_pusher_set_empty_host_is_pusher_own_port_too(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    runner.invoke(app, ["init", "--db", str(db)])
    pusher(db, "set", "--host", "127.0.0.1", "--port", "6001", "--scheme", "http")
    pusher(db, "set", "--host", "")
    assert url_in_force(db) == "https://api-mt1.pusher.com:443"
    # a port given with the cluster is taken as asked
    pusher(db, "set", "--cluster", "eu", "--port", "8443")
    assert url_in_force(db) == "https://api-eu.pusher.com:8443"


def test_pusher_set_secret_from_empty_stdin_says_so(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    runner.invoke(app, ["init", "--db", str(db)])
    pusher(db, "set", "--app-id", "1", "--key", "k", "--secret", "kept-secret")
    empty = pusher(db, "set", "--secret", "-", "--app-id", "2", stdin="\n", code=1)
    said = "error: the secret read from stdin was empty: nothing was changed"
    assert empty.stderr.strip() == said
    assert shown(db)["app_id"] == "1"  # nothing half-written
    key = pusher(db, "set", "--encryption-master-key", "-", stdin="", code=1)
    assert "encryption master key read from stdin was empty" in key.stderr
