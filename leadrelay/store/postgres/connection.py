"""Connecting to PostgreSQL: the writer's connection, its migration, a connection the server
has hung up on (seen before it is used), and psycopg's errors in words."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg.rows import dict_row

from leadrelay.config import mask_secrets
from leadrelay.errors import Unavailable
from leadrelay.store.base import Row
from leadrelay.store.postgres.schema import migrate

LISTEN_APPLICATION = "leadrelay-listen"  # the LISTEN connection's name in pg_stat_activity
LEAD_WRITER_APPLICATION = "leadrelay-lead-writer"  # a lead writer process's connection
WRITER_APPLICATION = "leadrelay-writer"  # any other store's writer connection
CONNECT_TIMEOUT = 10
# psycopg_pool retries a lost connection with a doubling delay until reconnect_timeout (5 min
# by default): after a minute's outage its next try could be a minute away.  Giving up after
# a few seconds instead lets the next read start afresh (at once, then 1 s, 2 s…), so the
# readers come back within seconds of the server, however long it was away.
RECONNECT_SECONDS = 5
# A read waits up to CONNECT_TIMEOUT for a reader connection; once the server was found
# unreachable, only this long, so that through an outage requests answer 503 at once, not
# after 10 s each.  The first read that gets a connection again lifts it.
UNREACHABLE_WAIT_SECONDS = 1.0
READERS = 4  # the pool's connections at most
# The relay's writer (durable=False) has each statement cancelled by the server past this.
# A relay killed mid-statement leaves its backend running the statement to its end, holding
# the rows it locked: every other daemon's relay skips them (SKIP LOCKED) or waits on them.
# Its claims take milliseconds (transaction.py's REPLAN); this bounds any that would not.
RELAY_STATEMENT_SECONDS = 10.0


def translate(exc: psycopg.Error) -> Unavailable:
    """psycopg's error in words, without a password: libpq quotes the URL's parts in some
    (a bad percent-escape echoes the password itself)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = mask_secrets(first)
    return Unavailable(
        f"the PostgreSQL database failed ({first}); check the server and the db URL",
        code="database_unavailable",
    )


def dropped(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """True when the server has closed this idle connection (a restart, a failover), seen
    without a round trip: the server's goodbye is waiting on the socket.  Checked before a
    connection is used, so that the first batch or read after an outage goes on a new one
    rather than failing on the old."""
    if conn.closed or conn.broken:
        return True
    try:
        # the goodbye (an error message, then the end of the stream) may take two reads
        for _ in range(3):
            readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
            if not readable:
                break
            conn.pgconn.consume_input()  # raises once it reads the end of the stream
    except (OSError, psycopg.Error):
        return True
    return conn.pgconn.status != psycopg.pq.ConnStatus.OK


def connect(url: str, durable: bool, name: str) -> psycopg.Connection[Row]:
    """The writer's connection, in autocommit mode: a batch that runs one statement (new
    leads only) is committed by it, with no BEGIN or COMMIT; any other begins (Tx.begin).
    Not `durable`: the relay's, its statements bounded (RELAY_STATEMENT_SECONDS)."""
    conn = psycopg.connect(
        url,
        autocommit=True,
        row_factory=dict_row,
        connect_timeout=CONNECT_TIMEOUT,
        application_name=name,
    )
    conn.execute(f"SET synchronous_commit = {'on' if durable else 'off'}")
    if not durable:
        conn.execute(f"SET statement_timeout = {round(RELAY_STATEMENT_SECONDS * 1000)}")
    return conn


def migrate_url(url: str) -> None:
    with psycopg.connect(
        url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT
    ) as conn:
        migrate(conn)
