"""The database's own commands: `init`, `db backup`, `db prune`, `db copy`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from leadrelay.cli.support import (
    ConfigOption,
    DbOption,
    JsonOption,
    command_group,
    fail,
    missing_database,
    open_store,
    print_fields,
    print_json,
    run,
    say,
    settings_for,
    show,
)
from leadrelay.config import describe_db, is_postgres

db_app = command_group("The database: online backups and retention.")
COPY_TO_ENV = "LEADRELAY_COPY_TO"  # `db copy`'s target, kept off the command line


def init(db: DbOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Create the database (mode 0600) and print the first admin token, once."""
    from leadrelay import accounts
    from leadrelay.store import open_store as open_database

    settings = settings_for(db, config)
    postgres = is_postgres(settings.db)
    shown = describe_db(settings.db)
    if not postgres and Path(settings.db).exists():
        result: dict[str, Any] = {"db": shown, "created": False, "token": None}
        if as_json:
            print_json(result)
        else:
            say(f"a database already exists at {shown}; nothing to do")
            say("a new admin token, if you need one: leadrelay tokens create --admin")
        return

    async def create() -> str | None:
        store = await open_database(settings.db)  # on PostgreSQL: migrated, if it was not
        try:
            return await accounts.create_admin_token(store, only_if_none=True)
        finally:
            await store.close()

    token = run(create())
    if as_json:
        print_json({"db": shown, "created": token is not None or not postgres, "token": token})
        return
    if postgres and token is None:
        say(f"the database {shown} already has an admin token; nothing to do")
        return
    say(f"created the database {shown}" + ("" if postgres else " (mode 0600)"))
    print_fields({"admin token": token})
    say("Keep the token now: it is stored hashed and cannot be shown again.", "yellow")
    say("next: leadrelay pusher set …, leadrelay providers add NAME, leadrelay serve")


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="the file to write the copy to (must not exist)")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the database consistently, safe while 'leadrelay serve' runs (SQLite's backup API)."""
    from leadrelay.store.sqlite.backup import backup

    settings = settings_for(db)
    if is_postgres(settings.db):
        fail(
            "db backup copies a SQLite file; for PostgreSQL use pg_dump or your platform's "
            "backups (not supported on PostgreSQL)",
            2,
        )
    source = Path(settings.db)
    if not source.exists():
        fail(missing_database(source), 2)
    if path.exists():
        fail(f"{path.absolute()} already exists; give a new file name (backups never overwrite)")
    result = run(_backup(backup, source, path))
    show(result, as_json, _say_backup)


async def _backup(backup: Any, source: Path, target: Path) -> dict[str, Any]:
    import asyncio

    return dict(await asyncio.to_thread(backup, source, target))


def _say_backup(result: dict[str, Any]) -> None:
    say(
        f"backed up {result['source']} to {result['path']}: {result['bytes']} bytes, "
        f"{result['leads']} leads, {result['events']} events, in {result['seconds']} s"
    )


@db_app.command("prune")
def db_prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only count what would be removed")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete delivered events older than events_retention_days and expired idempotency keys."""
    from leadrelay.store import retention

    settings = settings_for(db, config)

    async def prune() -> dict[str, Any]:
        import asyncio

        async with open_store(settings):  # migrated, and a missing file is refused
            pass
        policy = retention.Policy.of(settings)
        pruned = await asyncio.to_thread(retention.prune, settings.db, policy, dry_run=dry_run)
        return {**pruned.as_dict(), "dry_run": dry_run}

    result = run(prune())
    if as_json:
        print_json(result)
        return
    verb = "would remove" if dry_run else "removed"
    kept = (
        "events are kept forever (events_retention_days = 0)"
        if settings.events_retention_days == 0
        else f"events older than {settings.events_retention_days:g} days"
    )
    typer.echo(
        f"{verb} {result['events']} delivered events and {result['idempotency_keys']} expired "
        f"idempotency keys ({kept})"
    )


@db_app.command("copy")
def db_copy(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help=(
                "the empty PostgreSQL database: postgresql://… (on the command line, a "
                "password shows in `ps`: give it in the environment instead, or at the prompt) "
                f"[env: {COPY_TO_ENV}; else asked for]"
            ),
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy this SQLite database into an empty PostgreSQL one (safe to run again)."""
    settings = settings_for(db, config)
    if is_postgres(settings.db):
        fail("db copy reads a SQLite database: point --db at the file to copy", 2)
    to = to or os.environ.get(COPY_TO_ENV) or _ask_for_target()
    if not is_postgres(to):
        fail(
            f"the target (--to, or {COPY_TO_ENV}) must be a PostgreSQL URL: "
            "postgresql://user@host:5432/name",
            2,
        )
    source = Path(settings.db)
    if not source.exists():
        fail(missing_database(source), 2)

    async def copy() -> dict[str, Any]:
        import asyncio

        from leadrelay.store.copy import copy as copy_database

        return await asyncio.to_thread(copy_database, source, to)

    result = run(copy())
    if as_json:
        print_json(result)
        return
    done = "copied" if result["copied"] else "already holds everything in"
    say(
        f"{result['target']} {done} {result['source']}: {result['leads']} leads, "
        f"{result['events']} events ({result['events pending']} pending, "
        f"{result['events delivered']} delivered, {result['events dead']} dead-lettered), "
        f"{result['providers']} providers, {result['tokens']} tokens, "
        f"{result['settings']} settings, {result['idempotency_keys']} idempotency keys; "
        "the counts match"
    )
    say(
        "to switch: stop 'leadrelay serve' on the file (what it takes after the copy began "
        "is not copied; run the copy again into an empty database if it took any), then "
        'start every daemon with db = "postgresql://…" in leadrelay.toml, or --db / '
        "LEADRELAY_DB"
    )


def _ask_for_target() -> str:
    """The target URL from a prompt that does not echo it (a terminal), else one line of
    stdin: never on the command line, where every local user's `ps` would show it."""
    if sys.stdin.isatty():
        answer = typer.prompt("the PostgreSQL database to copy into", hide_input=True)
    else:
        answer = sys.stdin.readline()
    return str(answer).strip()


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(db_app, name="db")
