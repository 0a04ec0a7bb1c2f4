"""The `leadrelay` command: thin shells over the same functions the API calls."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leadrelay.cli.support import (
    ConfigOption,
    DbOption,
    JsonOption,
    command_group,
    fail,
    open_store,
    print_fields,
    print_table,
    run,
    say,
    set_root_db,
    settings_for,
    show,
)

app = command_group(
    "leadrelay: lead webhooks in, a durable SQLite outbox, Pusher Channels out.",
    add_completion=False,
)
leads_app = command_group("Create, list and change leads.")
providers_app = command_group("Providers and their tokens.")
tokens_app = command_group("API tokens (stored hashed).")

ExternalIdOption = Annotated[
    str | None,
    typer.Option("--external-id", help="name the lead by the CRM's id for it", show_default=False),
]


def _print_version(value: bool) -> None:
    if value:
        from leadrelay import __version__

        typer.echo(f"leadrelay {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    db: DbOption = None,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", help="print the version and exit", callback=_print_version, is_eager=True
        ),
    ] = None,
) -> None:
    """leadrelay: lead webhooks in, a durable SQLite outbox, Pusher Channels out."""
    set_root_db(db)


app.add_typer(leads_app, name="leads")
app.add_typer(providers_app, name="providers")
app.add_typer(tokens_app, name="tokens")

LEAD_COLUMNS = ("id", "name", "status", "provider_id", "email", "phone", "source", "updated_at")


# --- serve ------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on [default: 8000]")] = None,
    relay: Annotated[
        str | None, typer.Option(help="where the relay runs: process, inline or off")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the daemon: the HTTP API and the relay to Pusher."""
    from leadrelay.web.serve import serve as run_server

    settings = settings_for(db, config, host=host, port=port, relay=relay)
    run(run_server(settings), fast_loop=True)


# --- leads ------------------------------------------------------------------------------


def _lead_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    print_table(title, LEAD_COLUMNS, [[row.get(c) for c in LEAD_COLUMNS] for row in rows])


@leads_app.command("create")
def leads_create(
    name: Annotated[str, typer.Option(help="the lead's name")],
    email: Annotated[str | None, typer.Option(help="e-mail address")] = None,
    phone: Annotated[str | None, typer.Option(help="phone number")] = None,
    provider: Annotated[int | None, typer.Option(help="assign to this provider id")] = None,
    source: Annotated[str | None, typer.Option(help="where the lead came from")] = None,
    notes: Annotated[str | None, typer.Option(help="free text, never broadcast")] = None,
    external_id: Annotated[
        str | None,
        typer.Option("--external-id", help="the CRM's id for it; a known one shows that lead"),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a lead, as a CRM would: stored with its lead.assigned event."""
    from leadrelay import leads

    settings = settings_for(db)
    body = {
        "name": name,
        "email": email,
        "phone": phone,
        "provider_id": provider,
        "source": source,
        "notes": notes,
        "external_id": external_id,
    }

    async def create() -> dict[str, Any]:
        fields = leads.parse_new_lead(body)
        async with open_store(settings) as store:
            result = await leads.create_lead(store, fields, status=settings.statuses[0])
            return result.lead

    lead = run(create())
    show(lead, as_json, print_fields)


@leads_app.command("list")
def leads_list(
    status: Annotated[str | None, typer.Option(help="only leads in this status")] = None,
    provider: Annotated[int | None, typer.Option(help="only this provider's leads")] = None,
    after: Annotated[int, typer.Option(help="start after this lead id")] = 0,
    limit: Annotated[int, typer.Option(help="at most this many", min=1, max=10000)] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List leads, oldest first."""
    from leadrelay import leads
    from leadrelay.auth import ADMIN

    settings = settings_for(db)

    async def fetch() -> list[dict[str, Any]]:
        if status is not None:
            leads.parse_status(status, settings.statuses)
        async with open_store(settings) as store:
            return await leads.list_leads(
                store, actor=ADMIN, status=status, provider_id=provider, after=after, limit=limit
            )

    rows = run(fetch())
    show(rows, as_json, _lead_table)


@leads_app.command("show")
def leads_show(
    lead_id: Annotated[
        int | None, typer.Argument(help="the lead's id (or name it by --external-id)")
    ] = None,
    external_id: ExternalIdOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one lead, by its id or by the CRM's id for it."""
    from leadrelay import leads
    from leadrelay.auth import ADMIN

    if (lead_id is None) == (external_id is None):
        fail("give the lead's id or --external-id, one of them")
    settings = settings_for(db)

    async def fetch() -> dict[str, Any]:
        async with open_store(settings) as store:
            found = lead_id or await leads.lead_id_by_external_id(store, external_id or "")
            return await leads.get_lead(store, found, actor=ADMIN)

    show(run(fetch()), as_json, print_fields)


@leads_app.command("status")
def leads_status(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[ID] STATUS",
            help="the lead's id (unless --external-id names it) and the new status",
            show_default=False,
        ),
    ],
    external_id: ExternalIdOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a lead's status as an admin (fires lead.status.updated when it changes)."""
    if external_id is not None:
        if len(args) != 1:
            fail("with --external-id, give only the new status")
        _change(external_id, {"status": args[0]}, db, as_json)
        return
    if len(args) != 2 or not args[0].isdigit():
        fail("give the lead's id and the new status: leads status ID STATUS")
    _change(int(args[0]), {"status": args[1]}, db, as_json)


@leads_app.command("assign")
def leads_assign(
    lead_id: Annotated[int, typer.Argument(help="the lead's id")],
    provider: Annotated[
        int | None, typer.Argument(help="the provider id; omit to unassign")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a lead to another provider as an admin (fires lead.assigned)."""
    _change(lead_id, {"provider_id": provider}, db, as_json)


@leads_app.command("erase")
def leads_erase(
    lead_id: Annotated[int, typer.Argument(help="the lead's id")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase a lead's personal fields (name, email, phone, notes, source); no broadcast."""
    from leadrelay import erasure

    settings = settings_for(db)

    async def erase() -> tuple[dict[str, Any], str]:
        async with open_store(settings) as store:
            return await erasure.erase_lead(store, lead_id), store.left_behind

    result, left_behind = run(erase())
    show(result, as_json, print_fields)
    if not as_json and not result["checkpointed"]:
        say(left_behind, "yellow")


def _change(lead: int | str, body: dict[str, Any], db: str | None, as_json: bool) -> None:
    """Change the lead with id `lead`, or with external_id `lead` when it is text."""
    from leadrelay import leads
    from leadrelay.auth import ADMIN

    settings = settings_for(db)

    async def change() -> dict[str, Any]:
        parsed = leads.parse_change(body, settings.statuses, admin=True)
        async with open_store(settings) as store:
            if isinstance(lead, str):
                lead_id = await leads.lead_id_by_external_id(store, lead)
            else:
                lead_id = lead
            return await leads.change_lead(store, lead_id, parsed, actor=ADMIN)

    show(run(change()), as_json, print_fields)


# --- providers and tokens -------------------------------------------------------------------


@providers_app.command("add")
def providers_add(
    name: Annotated[str, typer.Argument(help="the provider's name")],
    provider_id: Annotated[int | None, typer.Option("--id", help="a chosen id", min=1)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a provider and print its API token (shown only once)."""
    from leadrelay import accounts

    settings = settings_for(db)

    async def add() -> dict[str, Any]:
        async with open_store(settings) as store:
            return await accounts.add_provider(store, name, provider_id)

    result = run(add())
    if as_json:
        show(result, True, print_fields)
        return
    print_fields(result)
    say("Keep the token now: it is stored hashed and cannot be shown again.", "yellow")


@providers_app.command("list")
def providers_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List providers with their number of leads and who is watching.

    "watching now" while the provider's channel is occupied, else "last seen 3 min ago"
    (Pusher's channel webhooks at POST /pusher/webhooks; "never seen" without them)."""
    import time

    from leadrelay import accounts

    settings = settings_for(db)

    async def fetch() -> list[dict[str, Any]]:
        async with open_store(settings) as store:
            return await accounts.list_providers(store)

    rows = run(fetch())
    now = time.time()
    show(
        rows,
        as_json,
        lambda data: print_table(
            None,
            ["id", "name", "leads", "watching", "created_at"],
            [
                [
                    r["id"],
                    r["name"],
                    r["leads"],
                    accounts.watching_in_words(r, now),
                    r["created_at"],
                ]
                for r in data
            ],
        ),
    )


@providers_app.command("token")
def providers_token(
    provider_id: Annotated[int, typer.Argument(help="the provider's id")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create another token for a provider."""
    from leadrelay import accounts

    settings = settings_for(db)

    async def add() -> str:
        async with open_store(settings) as store:
            return await accounts.create_provider_token(store, provider_id)

    token = run(add())
    show({"token": token}, as_json, print_fields)


@tokens_app.command("create")
def tokens_create(
    admin: Annotated[bool, typer.Option("--admin", help="an admin token (required)")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an admin token (provider tokens come from 'providers add')."""
    from leadrelay import accounts

    if not admin:
        fail("say --admin to create an admin token; provider tokens come from 'providers add'")
    settings = settings_for(db)

    async def add() -> str | None:
        async with open_store(settings) as store:
            return await accounts.create_admin_token(store)

    token = run(add())
    if as_json:
        show({"token": token}, True, print_fields)
        return
    print_fields({"token": token})
    say("Keep the token now: it is stored hashed and cannot be shown again.", "yellow")


@tokens_app.command("list")
def tokens_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List tokens by their first characters (the tokens themselves are not stored)."""
    settings = settings_for(db)

    async def fetch() -> list[dict[str, Any]]:
        async with open_store(settings) as store:
            return await store.list_tokens()

    columns = ["prefix", "role", "provider_id", "created_at", "revoked_at"]
    show(
        run(fetch()),
        as_json,
        lambda rows: print_table(None, columns, [[r[c] for c in columns] for r in rows]),
    )


@tokens_app.command("revoke")
def tokens_revoke(
    prefix: Annotated[str, typer.Argument(help="the token's prefix, as 'tokens list' shows it")],
    db: DbOption = None,
) -> None:
    """Revoke a token (takes effect within 5 seconds in a running daemon)."""
    from leadrelay import accounts

    settings = settings_for(db)

    async def revoke() -> int:
        async with open_store(settings) as store:
            return await accounts.revoke_token(store, prefix)

    if run(revoke()) == 0:
        fail(f"no live token starts with {prefix!r}; see 'leadrelay tokens list'")
    say(f"revoked {prefix}")


def _register_operations() -> None:
    from leadrelay.cli import ops as cli_ops

    cli_ops.register(app)
    from leadrelay.cli import database as cli_database

    cli_database.register(app)


_register_operations()


def main() -> None:
    app()
