"""The PostgreSQL backend (psycopg 3): several daemons on one database.

`store` is the open database (the group-commit writer on its thread, a pool of readers,
LISTEN, the reads whose SQL is PostgreSQL's own; the shared ones are in ../reads.py);
`transaction` the write side's SQL, claims per event included; `schema` the numbered
migrations under an advisory lock, the outbox counters' triggers among them; `retention`
the pruning walk under row locks.
"""

from leadrelay.store.postgres.store import Store

__all__ = ["Store"]
