"""The store wing: every SQL statement, one backend a module.

`base` defines what everyone else sees (the `Store` and `Tx` protocols); `sqlite.Store` and
`postgres.Store` are the two backends, each with its write SQL (`transaction`,
`pg_transaction`) and its numbered migrations (`schema`, `pg_schema`).  `open_store` picks
the backend from the `db` setting: a postgresql:// URL, or a SQLite file's path.  It may
import only the base modules (`errors`, `events`); nothing of `relay/`, `pusher/`, `web/`
or `cli/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from leadrelay.config import is_postgres

if TYPE_CHECKING:
    from leadrelay.store.base import Store


async def open_store(db: Path | str, *, durable: bool = True, on_loop: bool = False) -> Store:
    """Open (creating and migrating) the database the `db` setting names."""
    if is_postgres(db):
        from leadrelay.store import postgres

        return await postgres.Store.open(str(db), durable=durable, on_loop=on_loop)
    from leadrelay.store import sqlite

    return await sqlite.Store.open(Path(db), durable=durable, on_loop=on_loop)
