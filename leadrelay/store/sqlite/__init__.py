"""The SQLite backend: one file, one daemon's writer, the default.

`store` is the open database (the group-commit writer on its thread, the reads whose SQL is
SQLite's own; the shared ones are in ../reads.py); `transaction` the write side's SQL;
`schema` the numbered migrations; `connection` opening, migrating and checkpointing a
file; `retention` the pruning walk; `backup` `db backup`'s online copy.
"""

from leadrelay.store.sqlite.store import Store

__all__ = ["Store"]
