"""Operator commands: Pusher settings, test-connection, the outbox, webhooks, doctor, tail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadrelay.cli.support import (
    DbOption,
    JsonOption,
    command_group,
    fail,
    missing_database,
    open_store,
    print_fields,
    print_json,
    print_table,
    run,
    say,
    settings_for,
    show,
    stdout_console,
)
from leadrelay.cli.tail.command import tail
from leadrelay.cli.text import plain, visible
from leadrelay.config import is_postgres

if TYPE_CHECKING:
    from leadrelay.pusher.config import PusherConfig

pusher_app = command_group("The Pusher settings stored in the database.")
outbox_app = command_group("The events waiting for, or given up by, the relay.")
webhooks_app = command_group("Standard Webhooks signing for CRMs.")


def _update_pusher(db: str | None, data: dict[str, Any], as_json: bool) -> None:
    from leadrelay.pusher import config as pusher_config

    settings = settings_for(db)

    async def update() -> dict[str, Any]:
        async with open_store(settings) as store:
            return _shown(await pusher_config.update(store, data))

    show(run(update()), as_json, print_fields)


@pusher_app.command("show")
def pusher_show(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the Pusher settings (the secret masked)."""
    from leadrelay.pusher import config as pusher_config

    settings = settings_for(db)

    async def load() -> dict[str, Any]:
        async with open_store(settings) as store:
            return _shown(await pusher_config.load(store))

    show(run(load()), as_json, print_fields)


def _shown(config: PusherConfig) -> dict[str, Any]:
    """The settings as `pusher show` prints them: masked, and which server is in force."""
    return {**config.masked(), "server": config.server}


@pusher_app.command("set")
def pusher_set(
    app_id: Annotated[str | None, typer.Option(help="the app id (digits)")] = None,
    key: Annotated[str | None, typer.Option(help="the app key")] = None,
    secret: Annotated[
        str | None, typer.Option(help="the app secret; '-' reads it from stdin", show_default=False)
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(help="Pusher's cluster, e.g. mt1 or eu; without --host: Pusher's own host"),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="a self-hosted Pusher-compatible server (soketi); '' for Pusher's own"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="its port", min=1, max=65535)] = None,
    scheme: Annotated[str | None, typer.Option(help="http or https")] = None,
    encryption_master_key: Annotated[
        str | None,
        typer.Option(
            help="the key of the encrypted channels (encrypted_channels): 32 bytes in "
            "base64; '-' reads it from stdin (the line after the secret's when both are "
            "'-'); '' removes it",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store Pusher settings; a running daemon follows within a second.

    --cluster without --host means Pusher's own host (port 443, https), whatever server was
    set before; --host means a self-hosted server. `pusher show` says which is in force."""
    if secret == "-":
        secret = _read_secret()
        if not secret:
            fail("the secret read from stdin was empty: nothing was changed")
    if encryption_master_key == "-":
        encryption_master_key = _read_secret("encryption master key")
        if not encryption_master_key:
            fail(
                "the encryption master key read from stdin was empty: nothing was changed "
                "(--encryption-master-key '' removes it)"
            )
    data = {
        "app_id": app_id,
        "key": key,
        "secret": secret,
        "cluster": cluster,
        "host": host,
        "port": port,
        "scheme": scheme,
        "encryption_master_key": encryption_master_key,
    }
    if all(value is None for value in data.values()):
        fail(
            "give at least one of --app-id --key --secret --cluster --host --port --scheme "
            "--encryption-master-key"
        )
    _update_pusher(db, data, as_json)


def _read_secret(what: str = "secret") -> str:
    """'-': typed at a prompt that does not echo it, or read from a pipe as is."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"Pusher {what} (not shown): ").strip()
    return sys.stdin.readline().strip()


@pusher_app.command("enable")
def pusher_enable(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Switch relaying on."""
    _update_pusher(db, {"enabled": True}, as_json)


@pusher_app.command("disable")
def pusher_disable(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Switch relaying off: events wait in the outbox."""
    _update_pusher(db, {"enabled": False}, as_json)


def test_connection(
    roundtrip: Annotated[
        bool, typer.Option("--roundtrip", help="also receive a test event over a websocket")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the stored settings against the real server; exit 0 when it works."""
    from leadrelay.errors import LeadrelayError, PusherError
    from leadrelay.pusher import config as pusher_config
    from leadrelay.pusher.http import test_connection as check

    settings = settings_for(db)
    if as_json and not is_postgres(settings.db) and not Path(settings.db).exists():
        print_json(_failure("no_database", missing_database(Path(settings.db)), 2))
        raise typer.Exit(2)

    async def probe() -> dict[str, Any]:
        # a script reads the cause from stdout, whichever way it went
        try:
            async with open_store(settings) as store:
                config = await pusher_config.load(store)
        except LeadrelayError as exc:
            if not as_json:
                raise
            return _failure("database", str(exc), exc.exit_code)
        try:
            return await check(config, roundtrip=roundtrip)
        except PusherError as exc:
            if not as_json:
                raise
            return _failure(exc.kind, str(exc), exc.exit_code)

    result = run(probe())
    if as_json:
        print_json({"ok": True, **result} if "cause" not in result else result)
        if "cause" in result:
            raise typer.Exit(result["exit_code"])
        return
    line = f"ok: {result['server']} app {result['app_id']} answered in {result['http_ms']} ms"
    if "roundtrip_ms" in result:
        line += f"; a test event came back over the websocket in {result['roundtrip_ms']} ms"
    typer.echo(visible(line))


def _failure(cause: str, message: str, exit_code: int) -> dict[str, Any]:
    return {"ok": False, "cause": cause, "message": message, "exit_code": exit_code}


# --- outbox ------------------------------------------------------------------------------


@outbox_app.command("status")
def outbox_status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Backlog, oldest pending event, failures, whether the relay is paused, who relays."""
    from leadrelay import outbox

    settings = settings_for(db)

    async def fetch() -> dict[str, Any]:
        async with open_store(settings) as store:
            return await outbox.status(store)

    show(run(fetch()), as_json, lambda status: print_fields(_status_fields(status)))


def _status_fields(status: dict[str, Any]) -> dict[str, Any]:
    """The status for people: the lease in words, not as a nested object."""
    shown = dict(status)
    lease = shown.pop("relay_lease", None) or {}
    if lease.get("claims_per_event"):
        shown["relay_holder"] = "every serve on this database relays (claims per event)"
    elif lease.get("held"):
        shown["relay_holder"] = (
            f"{lease['holder']} (relay pid {lease['relay_pid']}, "
            f"renewed {lease['renewed_seconds_ago']:g} s ago)"
        )
    else:
        shown["relay_holder"] = "none: no serve relays this database now"
    api = shown.pop("pusher_api", None)
    if api is not None:  # the Pusher API's events, counted apart: on one line
        shown["pusher_api"] = ", ".join(f"{n} {name}" for name, n in api.items())
    return shown


def _event_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            r["id"],
            r["event_id"][:8],
            r["type"],
            r["lead_id"] if r["lead_id"] is not None else f"({r['channels'][0]})",
            r["seq"],
            r["attempts"],
            r["last_error"],
        ]
        for r in rows
    ]


@outbox_app.command("failed")
def outbox_failed(
    limit: Annotated[int, typer.Option(help="at most this many", min=1)] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dead-lettered events with their reason, and events being retried."""
    from leadrelay import outbox

    settings = settings_for(db)

    async def fetch() -> dict[str, list[dict[str, Any]]]:
        async with open_store(settings) as store:
            return await outbox.failed(store, limit)

    found = run(fetch())
    if as_json:
        print_json(found)
        return
    # an app's Pusher API event has no lead: its channel is shown there, in brackets
    columns = ["id", "event", "type", "lead", "seq", "attempts", "last error"]
    print_table("dead-lettered", columns, _event_rows(found["dead"]))
    print_table("retrying", columns, _event_rows(found["retrying"]))


@outbox_app.command("retry")
def outbox_retry(
    event_id: Annotated[
        int | None, typer.Argument(help="the event's id, from 'outbox failed'")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="every dead-lettered event")] = False,
    db: DbOption = None,
) -> None:
    """Send dead-lettered events again."""
    from leadrelay import outbox

    if (event_id is None) == (not all_):
        fail("give an event id or --all")
    settings = settings_for(db)

    async def retry() -> int:
        async with open_store(settings) as store:
            return await outbox.retry(store, event_id)

    count = run(retry())
    if count == 0:
        fail("nothing to retry: no event is dead-lettered")
    say(f"{count} event(s) are pending again")


# --- webhooks -------------------------------------------------------------------------------


@webhooks_app.command("secret")
def webhooks_secret(
    rotate: Annotated[
        bool, typer.Option("--rotate", help="make a new secret; the old one keeps working a while")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the secret CRMs sign their webhooks with (made on first use).

    One secret for both: POST /api/leads and POST /api/leads/status.
    """
    from leadrelay.web import webhook_secrets

    settings = settings_for(db)

    async def get() -> str:
        async with open_store(settings) as store:
            return await webhook_secrets.current_secret(
                store, rotate=rotate, grace_hours=settings.webhook_grace_hours
            )

    secret = run(get())
    show({"secret": secret}, as_json, lambda data: typer.echo(data["secret"]))
    if rotate:
        say(f"the previous secret keeps working for {settings.webhook_grace_hours:g} h")


@webhooks_app.command("sign")
def webhooks_sign(
    body: Annotated[Path, typer.Argument(help="the JSON body to sign; '-' reads stdin")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the webhook-* headers for a body, to test with curl.

    Any body: a lead for POST /api/leads, a status change for POST /api/leads/status.
    """
    from leadrelay.web import webhook_secrets, webhooks

    data = sys.stdin.buffer.read() if str(body) == "-" else _read(body)
    settings = settings_for(db)

    async def get() -> str:
        async with open_store(settings) as store:
            return await webhook_secrets.current_secret(store)

    headers = webhooks.sign_headers(run(get()), data)
    if as_json:
        print_json(headers)
        return
    for name, value in headers.items():
        typer.echo(f"-H '{name}: {value}'")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def doctor(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Check the database, settings, Pusher and the outbox ledger; say what to fix."""
    from leadrelay.doctor import run_checks

    settings = settings_for(db)
    checks = run(run_checks(settings))
    failed = [c for c in checks if c["status"] == "fail"]
    if as_json:
        print_json({"ok": not failed, "checks": checks})
    else:
        from rich.text import Text

        marks = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red")}
        console = stdout_console()
        for check in checks:
            mark, style = marks[check["status"]]
            # the detail may quote a database or server error: text, never markup
            line = plain(f"{check['name']}: {check['detail']}")
            console.print(Text.assemble((mark.rjust(4), style), "  ", line))
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(pusher_app, name="pusher")
    app.command("test-connection")(test_connection)
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(webhooks_app, name="webhooks")
    app.command("doctor")(doctor)
    app.command("tail")(tail)
