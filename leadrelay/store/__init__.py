"""The store wing: every SQL statement, one backend a subpackage.

`base` defines what everyone else sees (the `Store` and `Tx` protocols, the shared row
columns and settings keys); `reads` the reads whose SQL both backends share, `rows` a new
row's INSERT parameters, `batching` the group commit's queued job, `retention` the pruning
policy.  `sqlite/` and `postgres/` are the two backends, each with its Store, its write SQL
(`transaction`), its numbered migrations (`schema`) and its pruning walk (`retention`);
neither imports the other.  `copy` is `db copy`, from the one into the other.  `open_store`
picks the backend from the `db` setting: a postgresql:// URL, or a SQLite file's path.  The
wing may import only the base modules (`errors`, `events`, `config`); nothing of `relay/`,
`pusher/`, `web/` or `cli/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from leadrelay.config import is_postgres, remember_password

if TYPE_CHECKING:
    from leadrelay.store.base import Store


async def open_store(db: Path | str, *, durable: bool = True, on_loop: bool = False) -> Store:
    """Open (creating and migrating) the database the `db` setting names."""
    if is_postgres(db):
        from leadrelay.store import postgres

        remember_password(db)  # its errors never quote it (config.mask_secrets)
        return await postgres.Store.open(str(db), durable=durable, on_loop=on_loop)
    from leadrelay.store import sqlite

    return await sqlite.Store.open(Path(db), durable=durable, on_loop=on_loop)
