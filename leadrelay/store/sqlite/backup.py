"""`leadrelay db backup`: a consistent copy of a live database with SQLite's online backup API.

The copy is taken in one step, inside one read transaction: in WAL mode a reader blocks no
writer, so `serve` goes on taking leads while the snapshot is copied, and the copy holds
exactly the transactions committed before the step began (a stepwise backup would restart
each time another connection writes, which under steady intake could be forever).  The copy
is written beside its target under a temporary name, fsynced, checked, made mode 0600 and
only then renamed into place, so a backup file that exists is a whole one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from leadrelay.errors import Unavailable
from leadrelay.store.sqlite.connection import create_private, translate


def backup(source: Path, target: Path) -> dict[str, Any]:
    """Copy `source` to `target` (which must not exist); return what was copied."""
    started = time.monotonic()
    target = target.absolute()
    partial = target.with_name(f".{target.name}.partial")
    try:
        create_private(partial)
        src = sqlite3.connect(source)  # it only reads; WAL needs it to map the -shm
        try:
            src.execute("PRAGMA busy_timeout = 5000")
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=-1)  # one step: one snapshot
                dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise Unavailable(
                        f"the copy failed its integrity check ({check}); the database itself "
                        "may be damaged: run 'leadrelay doctor'",
                        code="backup_failed",
                    )
                leads = dst.execute("SELECT count(*) FROM leads").fetchone()[0]
                events = dst.execute("SELECT count(*) FROM events").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise translate(exc) from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise Unavailable(
            f"cannot write the backup {target}: {exc.strerror}", code="backup_failed"
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {
        "source": str(source.absolute()),
        "path": str(target),
        "bytes": target.stat().st_size,
        "leads": int(leads),
        "events": int(events),
        "seconds": round(time.monotonic() - started, 3),
    }


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
