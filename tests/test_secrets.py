"""Secrets never leak: not in a response, a header, CLI output, or the daemon's logs.

The secrets are the Pusher app secret, API tokens (admin and provider) and the Standard
Webhooks secrets. Each check looks for the exact strings. The deliberate exceptions are
where a secret is handed out once on purpose: `providers add` / `tokens create` print
the new token, `webhooks secret` prints the signing secret, and `serve` prints the admin
token it made on first start on stdout.
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from leadrelay import accounts
from leadrelay.cli.main import app
from leadrelay.config import Settings
from leadrelay.store.sqlite import Store
from leadrelay.web import webhook_secrets
from leadrelay.web.webhooks import generate_secret, sign_headers
from support.app import InProcess, running_app
from support.serve import Serve, cli, cli_json
from support.soketi import free_port

PUSHER_SECRET = "pshsec-" + secrets.token_hex(16)
# the encrypted channels' master key (32 bytes, base64)
MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
OTHER_PUSHER_SECRET = "pshsec-" + secrets.token_hex(16)


def leaks(text: str, secret_values: Iterable[str]) -> list[str]:
    """The secrets found in `text`, each shown by its first characters only."""
    return [value[:8] + "…" for value in secret_values if value and value in text]


def response_text(response: httpx.Response) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return f"{headers}\n{response.content.decode('utf-8', 'replace')}"


# --- HTTP responses ----------------------------------------------------------------------------


class Keys:
    def __init__(self, lr: InProcess, provider_token: str, webhook_secret: str) -> None:
        self.lr = lr
        self.provider_token = provider_token
        self.webhook_secret = webhook_secret

    @property
    def all(self) -> list[str]:
        return [
            PUSHER_SECRET,
            MASTER_KEY,
            self.lr.admin_token,
            self.provider_token,
            self.webhook_secret,
        ]


@pytest.fixture
async def keys(settings: Settings) -> AsyncIterator[Keys]:
    async with running_app(settings) as lr:
        provider = await lr.add_provider("Acme")
        webhook_secret = await webhook_secrets.current_secret(lr.store)
        body = {
            "app_id": "1",
            "key": "app-key",
            "secret": PUSHER_SECRET,
            "encryption_master_key": MASTER_KEY,
            "host": "127.0.0.1",
            "port": free_port(),  # nothing listens: the connection test fails fast
            "scheme": "http",
        }
        response = await lr.client.put("/api/admin/settings/pusher", json=body, headers=lr.auth())
        assert response.status_code == 200
        yield Keys(lr, provider["token"], webhook_secret)


def _requests(keys: Keys) -> list[tuple[str, str, dict[str, Any]]]:
    admin = keys.lr.auth()
    provider = keys.lr.auth(keys.provider_token)
    body = json.dumps({"name": "Ada", "provider_id": 1}).encode()
    signed = {"Content-Type": "application/json", **sign_headers(keys.webhook_secret, body)}
    wrong_signature = sign_headers(generate_secret(), body)
    near_admin = {"Authorization": f"Bearer {keys.lr.admin_token}x"}
    near_provider = {"Authorization": f"Bearer {keys.provider_token[:-1]}"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return [
        ("POST", "/api/leads", {"json": {"name": "Ada", "provider_id": 1}, "headers": admin}),
        ("POST", "/api/leads", {"content": body, "headers": signed}),
        ("POST", "/api/leads", {"content": body, "headers": {**signed, **wrong_signature}}),
        ("POST", "/api/leads", {"json": {"name": "Ada"}, "headers": near_admin}),
        ("POST", "/api/leads", {"json": {"name": "Ada"}, "headers": provider}),
        ("GET", "/api/admin/leads", {"headers": admin}),
        ("GET", "/api/admin/leads/1", {"headers": admin}),
        ("PATCH", "/api/admin/leads/1", {"json": {"status": "contacted"}, "headers": admin}),
        ("GET", "/api/admin/events", {"headers": admin}),
        ("GET", "/api/provider/leads", {"headers": provider}),
        ("GET", "/api/provider/events", {"headers": provider}),
        ("GET", "/api/provider/leads", {"headers": near_provider}),
        ("PATCH", "/api/provider/leads/1", {"json": {"status": "lost"}, "headers": provider}),
        ("GET", "/api/admin/settings/pusher", {"headers": admin}),
        ("PUT", "/api/admin/settings/pusher", {"json": {"cluster": "eu"}, "headers": admin}),
        ("PUT", "/api/admin/settings/pusher", {"json": {"key": "a b"}, "headers": admin}),
        ("PUT", "/api/admin/settings/pusher", {"json": {"secret": 5}, "headers": admin}),
        ("POST", "/api/admin/settings/pusher/test", {"headers": admin}),
        ("POST", "/api/admin/settings/pusher/test", {"headers": provider}),
        (
            "POST",
            "/broadcasting/auth",
            {"content": b"socket_id=1.2&channel_name=private-provider.1", "headers": {
                **provider, **form}},
        ),
        ("POST", "/broadcasting/auth", {"json": {"socket_id": "1.2"}, "headers": admin}),
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/metrics", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/nowhere", {"headers": admin}),
        ("DELETE", "/api/leads", {"headers": admin}),
    ]  # fmt: skip


@pytest.mark.anyio
async def test_no_response_body_or_header_carries_a_secret(keys: Keys) -> None:
    statuses = []
    for method, path, kwargs in _requests(keys):
        response = await keys.lr.client.request(method, path, **kwargs)
        statuses.append(response.status_code)
        assert response.status_code < 500, (method, path, response.text)
        assert not leaks(response_text(response), keys.all), (method, path)
    assert {200, 201, 401, 403, 404, 405, 422} <= set(statuses)


@pytest.mark.anyio
async def test_pusher_secret_is_masked_to_its_last_two_characters(keys: Keys) -> None:
    response = await keys.lr.client.get("/api/admin/settings/pusher", headers=keys.lr.auth())
    assert response.json()["secret"] == "••••" + PUSHER_SECRET[-2:]
    response = await keys.lr.client.put(
        "/api/admin/settings/pusher", json={"secret": "short"}, headers=keys.lr.auth()
    )
    assert response.json()["secret"] == "••••"


@pytest.mark.anyio
async def test_refused_secret_is_not_echoed(keys: Keys) -> None:
    bad = PUSHER_SECRET + " with spaces"
    response = await keys.lr.client.put(
        "/api/admin/settings/pusher", json={"secret": bad}, headers=keys.lr.auth()
    )
    assert response.status_code == 422
    assert PUSHER_SECRET not in response.text


@pytest.mark.anyio
async def test_tokens_are_stored_only_as_hashes(keys: Keys) -> None:
    rows = await keys.lr.store.fetch_all("SELECT * FROM tokens")
    assert rows
    dump = json.dumps(rows)
    assert not leaks(dump, [keys.lr.admin_token, keys.provider_token])
    second = await accounts.create_admin_token(keys.lr.store)
    assert second is not None and second not in json.dumps(
        await keys.lr.store.fetch_all("SELECT * FROM tokens")
    )


# --- CLI output -----------------------------------------------------------------------------


async def _create_database(db: Path) -> None:
    store = await Store.open(db)
    await store.close()


def test_cli_output_never_shows_a_secret(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    anyio.run(_create_database, db)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, [*args, "--db", str(db)])
        return result.exit_code, result.stdout + result.stderr

    admin = json.loads(run("tokens", "create", "--admin", "--json")[1])["token"]
    provider = json.loads(run("providers", "add", "Acme", "--json")[1])["token"]
    webhook = json.loads(run("webhooks", "secret", "--json")[1])["secret"]
    port = str(free_port())
    pusher_set = ["--app-id", "1", "--key", "app-key", "--secret", PUSHER_SECRET]
    pusher_set += ["--encryption-master-key", MASTER_KEY]
    pusher_set += ["--host", "127.0.0.1", "--port", port, "--scheme", "http"]
    body = tmp_path / "lead.json"
    body.write_text('{"name": "Ada"}')
    commands = [
        ["pusher", "set", *pusher_set],
        ["pusher", "set", *pusher_set, "--json"],
        ["pusher", "show"],
        ["pusher", "show", "--json"],
        ["pusher", "enable"],
        ["pusher", "enable", "--json"],
        ["pusher", "set", "--secret", PUSHER_SECRET + " x"],  # refused
        ["test-connection"],  # nothing listens there: fails
        ["test-connection", "--json"],
        ["doctor"],
        ["doctor", "--json"],
        ["tokens", "list"],
        ["tokens", "list", "--json"],
        ["providers", "list"],
        ["providers", "list", "--json"],
        ["leads", "create", "--name", "Ada", "--provider", "1", "--json"],
        ["leads", "list", "--json"],
        ["outbox", "status", "--json"],
        ["webhooks", "sign", str(body)],
        ["webhooks", "sign", str(body), "--json"],
        ["pusher", "disable"],
    ]
    secret_values = [PUSHER_SECRET, MASTER_KEY, admin, provider, webhook]
    codes = []
    for command in commands:
        code, shown = run(*command)
        codes.append(code)
        assert "Traceback" not in shown, (command, shown)
        assert not leaks(shown, secret_values), (command, shown)
    # the refused secret and the failed connection test said so, and still showed nothing
    assert codes[6] != 0 and codes[7] != 0 and codes[:6] == [0] * 6
    # the same through a real process, as a user runs it
    shown = cli(db, "pusher", "show").stdout
    assert "••••" + PUSHER_SECRET[-2:] in shown and PUSHER_SECRET not in shown
    assert cli_json(db, "pusher", "show")["secret"] == "••••" + PUSHER_SECRET[-2:]
    shown_key = cli_json(db, "pusher", "show")["encryption_master_key"]
    assert shown_key == "••••" + MASTER_KEY[-2:]


def test_cli_help_never_shows_a_secret_from_the_environment(tmp_path: Path) -> None:
    env = {"PUSHER_APP_SECRET": PUSHER_SECRET, "LEADRELAY_DB": str(tmp_path / "x.db")}
    for command in (["serve", "--help"], ["pusher", "set", "--help"]):
        result = cli(tmp_path / "x.db", *command, check=False, env=env)
        assert PUSHER_SECRET not in result.stdout + result.stderr


# --- the daemon's logs --------------------------------------------------------------------------


def test_serve_logs_never_show_a_secret(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    env = {
        # Laravel's variables seed the stored settings on first start, relaying enabled,
        # towards a port where nothing listens: the relay fails and logs why
        "PUSHER_APP_ID": "1",
        "PUSHER_APP_KEY": "app-key",
        "PUSHER_APP_SECRET": PUSHER_SECRET,
        "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": str(free_port()),
        "PUSHER_SCHEME": "http",
        "LEADRELAY_LOG_LEVEL": "debug",
    }
    server = Serve(db, env=env).start()
    try:
        assert server.admin_token is not None
        provider = cli_json(db, "providers", "add", "Acme")
        webhook = cli_json(db, "webhooks", "secret")["secret"]
        secret_values = [
            PUSHER_SECRET,
            OTHER_PUSHER_SECRET,
            server.admin_token,
            provider["token"],
            webhook,
        ]
        admin = server.auth()
        body = json.dumps({"name": "Ada", "provider_id": provider["id"]}).encode()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            client.post("/api/leads", json={"name": "Ada"}, headers=admin)
            signed = {"Content-Type": "application/json", **sign_headers(webhook, body)}
            client.post("/api/leads", content=body, headers=signed)
            client.post("/api/leads", content=body, headers={**signed, "webhook-signature": "v1,x"})
            client.post("/api/leads", json={"name": "Ada"}, headers=server.auth("lr_nope"))
            client.post("/api/leads", json={"name": "Ada"}, headers=server.auth(provider["token"]))
            client.get("/api/provider/leads", headers=server.auth(provider["token"]))
            client.post("/api/admin/settings/pusher/test", headers=admin)
            client.put("/api/admin/settings/pusher", json={"secret": OTHER_PUSHER_SECRET},
                       headers=admin)  # fmt: skip
            client.post("/api/admin/settings/pusher/test", headers=admin)
            client.post(
                "/broadcasting/auth",
                data={"socket_id": "1.2", "channel_name": f"private-provider.{provider['id']}"},
                headers=server.auth(provider["token"]),
            )
            client.post("/api/leads", json={"name": "Bo"}, headers=admin)
            deadline = time.monotonic() + 10
            while "deliver" not in server.logs().lower() and time.monotonic() < deadline:
                time.sleep(0.1)  # the relay's first failed delivery
        server.signal(signal.SIGTERM)  # the graceful stop logs too
        assert server.process is not None
        server.process.wait(20)
        logs = server.logs()
        stdout = "".join(server.stdout)
    finally:
        server.kill()
    assert "deliver" in logs.lower(), logs  # the relay did log its failures
    assert not leaks(logs, secret_values), logs
    # stdout holds the admin token made on first start, on purpose, and nothing else secret
    assert server.admin_token in stdout
    assert not leaks(stdout, [s for s in secret_values if s != server.admin_token]), stdout
