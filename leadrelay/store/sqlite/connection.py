"""Opening a SQLite database: its file mode, its pragmas, its migrations, its errors in words."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from leadrelay.errors import Unavailable
from leadrelay.store.sqlite.schema import MIGRATIONS

# Every connection zeroes what its statements free (deleted rows, the old copy of a row an
# update moved), whatever SQLite's build defaults to: erasure relies on it, and so does a
# lead whose row moved long before it was erased.  Set at connect and never turned off.
SECURE_DELETE = "PRAGMA secure_delete = ON"


def connect(path: Path, durable: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute(SECURE_DELETE)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def create_private(path: Path) -> None:
    """Create the database file mode 0600 before SQLite does (it would use the umask)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def statements(script: str) -> Iterator[str]:
    """Split a script into statements the way SQLite does (comments may hold ';')."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    if buffer.strip():
        yield buffer


def migrate(conn: sqlite3.Connection) -> None:
    """Apply what is missing, each migration in a transaction of its own.  Foreign keys are
    off meanwhile, as SQLite's procedure for rebuilding a table asks (migration 8): dropping
    the old table then frees its pages instead of deleting its rows one by one."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM migrations")}
    if all(version in done for version, _ in MIGRATIONS):
        return
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        _apply(conn, done)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _apply(conn: sqlite3.Connection, done: set[int]) -> None:
    for version, sql in MIGRATIONS:
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated while we waited for the lock
            if conn.execute("SELECT 1 FROM migrations WHERE version = ?", (version,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            for statement in statements(sql):
                conn.execute(statement)
            broken = conn.execute("PRAGMA foreign_key_check").fetchone()
            if broken is not None:
                raise sqlite3.IntegrityError(f"migration {version} broke a foreign key: {broken}")
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def translate(exc: sqlite3.Error) -> Unavailable:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        why = "the database is locked by another process; try again shortly"
    elif "readonly" in text or "read-only" in text:
        why = "the database is read-only; fix its file permissions or mount"
    elif "full" in text:
        why = "the disk holding the database is full; free some space"
    elif "disk i/o error" in text:
        why = (
            "the database files could not be written (disk I/O error); "
            "check that the disk is writable and healthy"
        )
    else:
        why = f"the database failed ({exc}); check the file and the disk"
    return Unavailable(why, code="database_unavailable")


def checkpoint_truncate(path: Path, *, attempts: int = 5) -> bool:
    """Copy the WAL into the database file and cut the WAL to zero bytes, so that what a
    transaction overwrote survives in neither; True once done (readers and writers of other
    processes can hold it off: it is tried a few times, for at most about six seconds)."""
    conn = connect(path, durable=True)
    try:
        conn.execute("PRAGMA busy_timeout = 1000")  # each try waits at most a second
        for _ in range(attempts):
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if busy == 0:
                return True
            time.sleep(0.25)
        return False
    except sqlite3.Error as exc:
        raise translate(exc) from None
    finally:
        conn.close()
