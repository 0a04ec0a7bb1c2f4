"""SQL run on a test's database from outside leadrelay, as another process (or time) would."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leadrelay.config import is_postgres


def execute(db: Path | str, sql: str, *params: Any) -> None:
    """One statement (`?` placeholders, as leadrelay's raw reads take) in its own transaction,
    on a SQLite file or a PostgreSQL URL."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
        return
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, params)
    conn.close()


@contextlib.contextmanager
def write_lock(db: Path | str) -> Iterator[None]:
    """Another process holding what a new lead needs, until the block ends: SQLite's write
    lock (BEGIN EXCLUSIVE), or on PostgreSQL the `leads` table locked against every write."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(str(db)) as conn:  # a transaction until the block ends
            conn.execute("LOCK TABLE leads IN EXCLUSIVE MODE")
            yield
            conn.rollback()
        return
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def rows(db: Path | str, sql: str) -> list[dict[str, Any]]:
    """What a query returns, read as another process would."""
    if is_postgres(db):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(str(db), row_factory=dict_row) as conn:
            return list(conn.execute(sql))  # type: ignore[arg-type]
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql)]
    finally:
        conn.close()
