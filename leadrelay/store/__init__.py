"""The store wing: every SQL statement, one backend a module.

`sqlite.Store` owns the connections (one writer, group commit, reads on a pool),
`transaction.Tx` is what a write job sees inside one transaction, and `schema` holds the
numbered migrations.  It may import only the base modules (`errors`, `events`); nothing of
`relay/`, `pusher/`, `web/` or `cli/`.
"""
