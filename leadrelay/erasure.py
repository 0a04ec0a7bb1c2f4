"""Erasure: a lead's personal fields leave its row, its stored events and the database file.

The row, its status, its seq and its events stay (counts, `doctor` and the ledger remain
true); its idempotency keys go (a CRM may use the e-mail as its key); no event is written,
so nothing is broadcast.  The lead then shows `name` "" and `email`, `phone`, `source`,
`notes` null, and (to admins) `erased_at`.  SQLite zeroes freed bytes (secure_delete, on
for every connection, so the old copy a row left when an update moved it is zeroed too)
and a TRUNCATE checkpoint then empties the WAL, so the old values are in neither the
database file nor its -wal, nor in any backup made afterwards.
PostgreSQL's tables are vacuumed, which removes the old row versions but not every byte of
them, and its WAL and backups are the server's: there the answer's `checkpointed` is false.
"""

from __future__ import annotations

import logging

from leadrelay import events
from leadrelay.errors import NotFound, Unavailable
from leadrelay.store.base import Row, Store, Tx

PERSONAL_FIELDS = ("name", "email", "phone", "notes", "source")

log = logging.getLogger("leadrelay.erasure")


async def erase_lead(store: Store, lead_id: int) -> Row:
    """Erase the lead's personal fields; return the lead as an admin sees it, with
    `events_rewritten` and `checkpointed` (False: the old values may remain in the
    database's files, where `store.left_behind` says)."""

    def erase(tx: Tx) -> tuple[Row, int]:
        if tx.lead_for_update(lead_id) is None:
            raise NotFound(f"there is no lead {lead_id}", code="lead_not_found")
        rewritten = tx.erase_lead(lead_id, PERSONAL_FIELDS)
        lead = tx.get_lead(lead_id)
        assert lead is not None
        return lead, rewritten

    lead, rewritten = await store.write(erase)
    try:
        checkpointed, left = await store.scrub_freed(), store.left_behind
    except Unavailable as exc:
        # the erasure is committed: a 503 now would say it was not made (seen when the
        # VACUUM's connection was cut); erasing again scrubs again
        checkpointed, left = False, f"its old values were not scrubbed ({exc.message}); erase again"
    if not checkpointed:
        log.warning("lead %d erased; %s", lead_id, left, extra={"lead_id": lead_id})
    view = events.lead_view(lead)
    view.update(notes=lead["notes"], external_id=lead["external_id"], erased_at=lead["erased_at"])
    return {**view, "events_rewritten": rewritten, "checkpointed": checkpointed}
