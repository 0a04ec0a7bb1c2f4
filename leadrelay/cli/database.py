"""The database's own commands: `init`."""

from __future__ import annotations

from typing import Any

import typer

from leadrelay.cli.support import (
    ConfigOption,
    DbOption,
    JsonOption,
    print_fields,
    print_json,
    run,
    say,
    settings_for,
)


def init(db: DbOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Create the database (mode 0600) and print the first admin token, once."""
    from leadrelay import accounts
    from leadrelay.store.sqlite import Store

    settings = settings_for(db, config)
    path = settings.db.absolute()
    if path.exists():
        result: dict[str, Any] = {"db": str(path), "created": False, "token": None}
        if as_json:
            print_json(result)
        else:
            say(f"a database already exists at {path}; nothing to do")
            say("a new admin token, if you need one: leadrelay tokens create --admin")
        return

    async def create() -> str | None:
        store = await Store.open(path)
        try:
            return await accounts.create_admin_token(store, only_if_none=True)
        finally:
            await store.close()

    token = run(create())
    if as_json:
        print_json({"db": str(path), "created": True, "token": token})
        return
    say(f"created the database {path} (mode 0600)")
    print_fields({"admin token": token})
    say("[yellow]Keep the token now: it is stored hashed and cannot be shown again.[/]")
    say("next: leadrelay pusher set …, leadrelay providers add NAME, leadrelay serve")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
