"""`leadrelay db copy --to postgresql://…`: a SQLite database into an empty PostgreSQL one.

Everything an operator relies on moves: leads, events in their delivery states (pending,
delivered, dead-lettered, with attempts and errors; apps' Pusher API events with their
channels and per-channel seqs), providers, hashed tokens, settings
(Pusher's, the webhook secrets), idempotency keys.  Runtime state stays behind: the relay
lease, the outbox counters (the PostgreSQL triggers count the events as COPY writes them)
and the wake socket's id (each database has its own, made by its migrations).

The source is read in one snapshot (a read transaction); the target is written in one
transaction, so a copy that fails leaves the target as it was and can simply be run again.
A target that already holds data is refused, unless it holds exactly what the source does
(a copy that succeeded: nothing to do).  After the commit the counts of both are compared.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from leadrelay.config import describe_db, remember_password
from leadrelay.errors import ConfigError, Unavailable
from leadrelay.store.postgres.connection import CONNECT_TIMEOUT, migrate_url
from leadrelay.store.postgres.connection import translate as translate_pg
from leadrelay.store.sqlite.connection import translate as translate_sqlite

# parents first (foreign keys); the runtime tables (leases, outbox_counts, migrations) stay,
# and so do what PostgreSQL's triggers and indexer rebuild (the counters, search_keys)
TABLES = (
    "providers",
    "tokens",
    "leads",
    "settings",
    "idempotency_keys",
    "pusher_channels",  # the channels of apps' Pusher API events, and their last seq
    "events",
)
# the source's columns PostgreSQL fills itself (search_pending: its default, every lead
# pending, so that the daemon's indexer writes the keys there)
SKIPPED = {"events": {"lease_owner", "lease_until"}, "leads": {"search_pending"}}
# the rows copied and counted: a database's own wake id stays (relay/wake.py)
COPIED_ROWS = {"settings": "key != 'wake_id'"}
STATES = ("pending", "delivered", "dead")


def counts_of(execute: Any) -> dict[str, int]:
    """Rows per table and events per state, through `execute(sql) -> rows of tuples`."""
    counts = {
        table: int(
            execute(f"SELECT count(*) FROM {table} WHERE {COPIED_ROWS.get(table, 'TRUE')}")[0][0]
        )
        for table in TABLES
    }
    for state in STATES:
        rows = execute(f"SELECT count(*) FROM events WHERE state = '{state}'")
        counts[f"events {state}"] = int(rows[0][0])
    return counts


def copy(source: Path, url: str) -> dict[str, Any]:
    """Copy `source` into the database at `url`; return what was copied."""
    remember_password(url)  # its errors never quote it (config.mask_secrets)
    _migrate_target(url)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise translate_sqlite(exc) from None
    try:
        src.execute("BEGIN")  # one snapshot for every table
        source_counts = counts_of(lambda sql: src.execute(sql).fetchall())
        with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as dst:
            dst.execute("SET synchronous_commit = on")
            target_counts = counts_of(lambda sql: dst.execute(sql).fetchall())
            if any(target_counts.values()):
                if target_counts == source_counts:
                    return _result(source, url, source_counts, copied=False)
                raise ConfigError(
                    f"{describe_db(url)} already holds data ({_summary(target_counts)}); "
                    "copy into an empty database (create a new one, or drop its tables)"
                )
            with dst.transaction():  # all or nothing: a failed copy can be run again
                for table in TABLES:
                    _copy_table(src, dst, table)
                for table in ("providers", "tokens", "leads", "pusher_channels", "events"):
                    dst.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                    )
            copied = counts_of(lambda sql: dst.execute(sql).fetchall())
    except sqlite3.Error as exc:
        raise translate_sqlite(exc) from None
    except psycopg.Error as exc:
        raise translate_pg(exc) from None
    finally:
        src.close()
    if copied != source_counts:
        raise Unavailable(
            f"the counts differ after the copy (source {_summary(source_counts)}, "
            f"target {_summary(copied)})",
            code="copy_mismatch",
        )
    return _result(source, url, copied, copied=True)


def _migrate_target(url: str) -> None:
    try:
        migrate_url(url)
    except psycopg.Error as exc:
        raise translate_pg(exc) from None


def _copy_table(src: sqlite3.Connection, dst: psycopg.Connection[Any], table: str) -> None:
    ours = [row[1] for row in src.execute(f"PRAGMA table_info({table})")]
    theirs = {
        row[0]
        for row in dst.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
    }
    columns = [c for c in ours if c not in SKIPPED.get(table, set())]
    missing = [c for c in columns if c not in theirs]
    if missing:
        raise ConfigError(
            f"not supported on PostgreSQL yet: {table}.{', '.join(missing)} has no column "
            "there; nothing was copied"
        )
    names = ", ".join(columns)
    with dst.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as pipe:
        where = COPIED_ROWS.get(table, "TRUE")
        for row in src.execute(f"SELECT {names} FROM {table} WHERE {where} ORDER BY rowid"):
            pipe.write_row(row)


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[table]} {table}" for table in TABLES)


def _result(source: Path, url: str, counts: dict[str, int], *, copied: bool) -> dict[str, Any]:
    return {"source": str(source), "target": describe_db(url), "copied": copied, **counts}
