"""A CRM's status change (`POST /api/leads/status`): the lead found by the CRM's own id, and
never rolled back by a late retry.

A CRM retries a webhook until it sees a 2xx, and its retries arrive out of order, so each
change may carry `changed_at`, when it happened in the CRM.  The lead keeps the newest
`changed_at` applied from the CRM; a change older than that is answered `applied: false`,
`reason: "stale"`, and changes nothing.  `applied` is true exactly when an event fired.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadrelay import events, leads
from leadrelay.errors import NotFound, ValidationFailed, WebhookIdReused, refuse_nul
from leadrelay.store.base import Row, Store, Tx

STALE = "stale"  # older than the lead's last change from the CRM
UNCHANGED = "unchanged"  # the lead already had that status (and provider)
MAX_EXTERNAL_ID = leads.NEW_LEAD_FIELDS["external_id"][0]
# RFC 3339's date-time ("T" and "Z" may be lower case, a space may stand for "T"), less year
# 0000, which Python's dates lack
YEAR = "([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
RFC3339 = (
    f"^{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]"
    "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]{1,9})?"
    "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_RFC3339 = re.compile(RFC3339)
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class StatusChange:
    """A checked status webhook: which lead, what to change, when the CRM changed it."""

    lead_id: int | None
    external_id: str | None
    change: Row  # "status", and "provider_id" when given
    changed_at: int | None  # microseconds since the Unix epoch


@dataclass(frozen=True)
class StatusResult:
    lead: Row
    applied: bool
    reason: str | None

    def answer(self) -> Row:
        return {"lead": self.lead, "applied": self.applied, "reason": self.reason}


def parse_changed_at(value: Any) -> int:
    """RFC 3339 with an offset, as microseconds since the Unix epoch (UTC): a number that
    compares in time order for any year (text in UTC could not hold 0001-01-01T00:00+01:00)."""
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        text = value.upper().replace(" ", "T")
        leap = text[17:19] == "60"  # a leap second: the last moment of its minute
        try:
            moment = datetime.fromisoformat(text[:17] + "59" + text[19:] if leap else text)
        except ValueError:  # a day the month lacks
            pass
        else:
            offset = moment.utcoffset() or timedelta(0)
            naive = moment.replace(tzinfo=None) - _EPOCH - offset
            return naive // _MICROSECOND + (999_999 - moment.microsecond if leap else 0)
    raise ValidationFailed(
        "'changed_at' must be an RFC 3339 time with its offset, e.g. 2026-12-01T10:00:00Z",
        code="invalid_field",
    )


def parse_status_change(data: Any, statuses: tuple[str, ...]) -> StatusChange:
    """Check a status webhook's body; unknown fields are ignored (CRMs send extra fields)."""
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", code="invalid_body")
    lead_id, external_id = data.get("id"), data.get("external_id")
    if (lead_id is None) == (external_id is None):
        raise ValidationFailed(
            "name the lead by 'external_id' (the CRM's id) or by 'id' (leadrelay's), "
            f"{'not both' if lead_id is not None else 'one of them'}",
            code="missing_field" if lead_id is None else "invalid_field",
        )
    if external_id is not None and not (
        isinstance(external_id, str) and 1 <= len(external_id) <= MAX_EXTERNAL_ID
    ):
        raise ValidationFailed(
            f"'external_id' must be a string of 1 to {MAX_EXTERNAL_ID} characters",
            code="invalid_field",
        )
    if external_id is not None:
        refuse_nul("'external_id'", external_id, code="invalid_field")
    if "status" not in data:
        raise ValidationFailed("'status' is required", code="missing_field")
    change: Row = {"status": leads.parse_status(data["status"], statuses)}
    if "provider_id" in data:
        value = data["provider_id"]
        change["provider_id"] = None if value is None else leads.parse_id("provider_id", value)
    changed_at = data.get("changed_at")
    return StatusChange(
        lead_id=None if lead_id is None else leads.parse_id("id", lead_id),
        external_id=external_id,
        change=change,
        changed_at=None if changed_at is None else parse_changed_at(changed_at),
    )


def change_status(
    request: StatusChange, idempotency_key: str | None, socket_id: str | None
) -> Callable[[Tx], StatusResult]:
    """The write of a status webhook; LostRace when another request stored its key first."""

    def apply(tx: Tx) -> StatusResult:
        if idempotency_key is not None:
            earlier = tx.key_outcome(idempotency_key)
            if earlier is not None:
                return _replayed(tx.get_lead(earlier[0]), earlier[1])
        if request.external_id is not None:
            before = tx.lead_by_external_id_for_update(request.external_id)
            named = f"external_id {request.external_id!r}"
        else:
            before = tx.lead_for_update(request.lead_id or 0)
            named = f"id {request.lead_id}"
        if before is None:
            raise NotFound(
                f"there is no lead with {named} yet; if its create is on the way, send this "
                "again once it has landed",
                code="lead_not_found",
            )
        if "provider_id" in request.change:
            leads.check_provider(tx, request.change["provider_id"])
        mark, changed_at = before["crm_changed_at"], request.changed_at
        if changed_at is not None and mark is not None and changed_at < mark:
            result = StatusResult(events.lead_view(before), False, STALE)
        else:
            # the mark moves even when nothing changes: the CRM said so at that time
            extra = {"crm_changed_at": changed_at} if changed_at is not None else None
            after, fired = leads.apply_change(
                tx, before, request.change, None, socket_id=socket_id, crm=True, extra=extra
            )
            result = StatusResult(events.lead_view(after), fired, None if fired else UNCHANGED)
        if idempotency_key is not None and not tx.claim_idempotency_key(
            idempotency_key, before["id"], {"applied": result.applied, "reason": result.reason}
        ):
            raise leads.LostRace(idempotency_key)
        return result

    return apply


def _replayed(lead: Row | None, outcome: Row | None) -> StatusResult:
    """A repeated delivery: the first answer's `applied` and `reason`, the lead as it is now.
    A key stored without an outcome is a create's: only a webhook-id is shared by both
    endpoints (intake.py), and the same delivery is not applied a second way."""
    if outcome is None:
        raise WebhookIdReused("POST /api/leads")
    assert lead is not None
    return StatusResult(events.lead_view(lead), bool(outcome["applied"]), outcome["reason"])


async def update_status(
    store: Store,
    request: StatusChange,
    *,
    idempotency_key: str | None = None,
    socket_id: str | None = None,
) -> StatusResult:
    """Apply a status webhook in one durable transaction with the events it fires."""
    try:
        return await store.write(change_status(request, idempotency_key, socket_id))
    except leads.LostRace as lost:
        return await replay(store, lost.key)


async def replay(store: Store, key: str) -> StatusResult:
    """The answer a stored key gives again."""
    found = await store.key_outcome(key)
    assert found is not None
    return _replayed(await store.get_lead(found[0]), found[1])
