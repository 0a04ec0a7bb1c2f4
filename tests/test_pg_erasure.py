"""Erasure on PostgreSQL, down to the server's files: after `leads erase` (the rewrite and
its VACUUM) and a checkpoint, no row version in the table files (nor their TOAST tables')
holds the erased values, and the command says what PostgreSQL may still keep.  The test
runs a cluster of its own, so that it can read the cluster's data directory."""

from __future__ import annotations

import asyncio
import random
import string
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from leadrelay import leads
from leadrelay.store import open_store
from support.database import rows
from support.postgres import Cluster, Server
from support.serve import Serve, cli, cli_json

pytestmark = pytest.mark.postgres

# notes long and random enough that PostgreSQL keeps them out of line, in the leads
# table's TOAST table, uncompressed
_NOTES = "".join(random.Random(15).choices(string.ascii_letters + string.digits, k=4500))
ERASED = {
    "name": "Zebulon Quixwell-Pg",
    "email": "zebulon.quixwell.pg@example.org",
    "phone": "+44 7700 918274",
    "notes": _NOTES,
}
# what the files are searched for: the notes by two slices (TOAST cuts a value in chunks)
SEARCHED = {**ERASED, "notes": _NOTES[1000:1040], "notes, later": _NOTES[3000:3040]}
KEPT = {"name": "Henrietta Kept-Pg", "email": "henrietta.pg@example.org"}
PAGE = 8192


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster() as started:
        yield started


def _main_fork(cluster: Cluster, url: str, table: str) -> list[Path]:
    """The data files of the table and of its TOAST table (their main forks: not the free
    space or visibility maps)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # the server's buffers onto the files
        rows = conn.execute(
            "SELECT pg_relation_filepath(oid) FROM pg_class WHERE oid = %s::regclass "
            "OR oid = (SELECT reltoastrelid FROM pg_class WHERE oid = %s::regclass)",
            (table, table),
        ).fetchall()
    assert len(rows) == 2  # the table and its TOAST table
    firsts = [cluster.data / row[0] for row in rows]
    return [p for f in firsts for p in (f, *sorted(f.parent.glob(f"{f.name}.[0-9]*")))]


def _tuples(data: bytes) -> Iterator[bytes]:
    """Every row version stored in heap pages, live or dead (line pointers in use)."""
    for start in range(0, len(data), PAGE):
        page = data[start : start + PAGE]
        lower = struct.unpack_from("<H", page, 12)[0]
        for offset in range(24, lower, 4):
            (item,) = struct.unpack_from("<I", page, offset)
            where, flags, length = item & 0x7FFF, (item >> 15) & 0x3, item >> 17
            if flags == 1 and length:  # LP_NORMAL: a tuple's bytes
                yield page[where : where + length]


def _where(cluster: Cluster, url: str, values: dict[str, str]) -> dict[str, dict[str, int]]:
    """For each table: in how many row versions, and in how many places of its files at all,
    any of `values` appears."""
    found: dict[str, dict[str, int]] = {}
    for table in ("leads", "events"):
        data = b"".join(path.read_bytes() for path in _main_fork(cluster, url, table))
        needles = [value.encode() for value in values.values()]
        found[table] = {
            "row versions": sum(any(n in t for n in needles) for t in _tuples(data)),
            "anywhere": sum(data.count(n) for n in needles),
        }
    return found


async def _fill(url: str) -> tuple[int, int]:
    store = await open_store(url)
    try:
        erased = await leads.create_lead(store, leads.parse_new_lead(ERASED), status="new")
        kept = await leads.create_lead(store, leads.parse_new_lead(KEPT), status="new")
        # delivered: each event row has a second version, as a relayed one has
        await store.write(lambda tx: tx.mark_delivered([1, 2]))
        return erased.lead["id"], kept.lead["id"]
    finally:
        await store.close()


def test_leads_erase_leaves_no_row_version_and_says_what_postgres_keeps(
    cluster: Cluster,
) -> None:
    url = Server(cluster.url).fresh_database()
    erased_id, kept_id = asyncio.run(_fill(url))
    before = _where(cluster, url, SEARCHED)
    # the lead's row and two of its notes' TOAST chunks; two versions of its event
    assert before["leads"]["row versions"] >= 3 and before["events"]["row versions"] >= 2

    done = cli(url, "leads", "erase", str(erased_id))
    said = done.stdout + done.stderr
    assert "the WAL could not be emptied yet" not in said  # SQLite's line, not true here
    assert "PostgreSQL may keep the old values" in said and "backups" in said

    after = _where(cluster, url, SEARCHED)
    assert after["leads"]["row versions"] == after["events"]["row versions"] == 0
    kept = _where(cluster, url, KEPT)  # the search does find what was not erased
    assert kept["leads"]["row versions"] >= 1 and kept["events"]["row versions"] >= 1

    with psycopg.connect(url) as conn:
        rows: list[Any] = conn.execute(
            "SELECT l.name, l.email, e.payload FROM leads l JOIN events e ON e.lead_id = l.id "
            "WHERE l.id = %s",
            (erased_id,),
        ).fetchall()
    assert rows and all(name == "" and email is None for name, email, _ in rows)
    assert not any(v in payload for _, _, payload in rows for v in ERASED.values())

    answer = cli_json(url, "leads", "erase", str(kept_id))
    assert answer["name"] == "" and answer["checkpointed"] is False


def test_erase_whose_vacuum_fails_after_its_commit_is_answered_as_done(
    pg_migrated_url: str,
) -> None:
    """The erase commits, then the VACUUM that scrubs the old row versions loses its
    connection (found by the concurrency checker under pg_terminate_backend: an erase
    answered 503 `database_unavailable`, "not written", was stored).  The answer is the
    erased lead with `checkpointed` false."""
    url = pg_migrated_url
    with Serve(url, relay="off") as serve:
        created = httpx.post(f"{serve.url}/api/leads", json=KEPT, headers=serve.auth())
        lead_id = created.json()["id"]
        answers: list[httpx.Response] = []
        path = f"{serve.url}/api/admin/leads/{lead_id}"
        erase = threading.Thread(
            target=lambda: answers.append(httpx.delete(path, headers=serve.auth(), timeout=60))
        )
        with psycopg.connect(url) as holder:  # a transaction until the block ends
            holder.execute("LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE")  # VACUUM waits
            erase.start()
            with psycopg.connect(url, autocommit=True) as admin:
                deadline = time.monotonic() + 60
                while not admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                    "query LIKE 'VACUUM%%' AND wait_event_type = 'Lock' AND pid <> %s",
                    (holder.info.backend_pid,),
                ).fetchall():
                    assert time.monotonic() < deadline, "the erase's VACUUM never waited"
                    time.sleep(0.05)
            erase.join(60)
            holder.rollback()
    (answer,) = answers
    assert answer.status_code == 200, answer.text
    assert answer.json()["checkpointed"] is False
    assert answer.json()["name"] == "" and answer.json()["erased_at"]
    (row,) = rows(url, f"SELECT name, email, erased_at FROM leads WHERE id = {lead_id}")
    assert row["name"] == "" and row["email"] is None and row["erased_at"]
