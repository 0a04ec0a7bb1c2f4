"""Lead use cases — create, change, look up — shared by the API and the CLI."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leadrelay import events, search
from leadrelay.auth import Principal
from leadrelay.errors import NotFound, ValidationFailed, WebhookIdReused, refuse_nul
from leadrelay.store.base import MAX_ID, Row, Store, Tx

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# field: (max length, required)
NEW_LEAD_FIELDS: dict[str, tuple[int, bool]] = {
    "name": (200, True),
    "email": (254, False),
    "phone": (50, False),
    "source": (200, False),
    "notes": (5000, False),
    "external_id": (200, False),
}


@dataclass(frozen=True)
class CreateResult:
    lead: Row
    created: bool  # False when an idempotency key or the external_id found an earlier lead


def _text(name: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"'{name}' must be a string", code="invalid_field")
    refuse_nul(f"'{name}'", value, code="invalid_field")
    if len(value) > max_len:
        raise ValidationFailed(
            f"'{name}' is {len(value)} characters long; at most {max_len} are allowed",
            code="field_too_long",
        )
    return value


def parse_id(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValidationFailed(f"'{name}' must be a positive whole number", code="invalid_field")
    return value


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", code="invalid_body")
    return data


def parse_new_lead(data: Any) -> Row:
    """Check a create body; unknown fields are ignored (CRMs send extra fields)."""
    data = _object(data)
    lead: Row = {}
    for name, (max_len, required) in NEW_LEAD_FIELDS.items():
        value = data.get(name)
        if value is None:
            if required:
                raise ValidationFailed(f"'{name}' is required", code="missing_field")
            lead[name] = None
            continue
        lead[name] = _text(name, value, max_len)
    if lead["external_id"] == "":
        lead["external_id"] = None  # no CRM key, rather than one every keyless lead shares
    if not lead["name"].strip():
        raise ValidationFailed("'name' must not be blank", code="invalid_field")
    if lead["email"] is not None and not EMAIL.fullmatch(lead["email"]):
        raise ValidationFailed("'email' does not look like an address", code="invalid_email")
    provider_id = data.get("provider_id")
    lead["provider_id"] = None if provider_id is None else parse_id("provider_id", provider_id)
    return lead


def parse_status(value: Any, statuses: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in statuses:
        raise ValidationFailed(
            f"unknown status {value!r}; use one of: {', '.join(statuses)}", code="unknown_status"
        )
    return value


def parse_change(data: Any, statuses: tuple[str, ...], *, admin: bool) -> Row:
    """Check a PATCH body: admins may change status and provider, providers only status."""
    data = _object(data)
    allowed = ("status", "provider_id") if admin else ("status",)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationFailed(
            f"cannot change {', '.join(unknown)}; only {' and '.join(allowed)} may be changed",
            code="unknown_field",
        )
    if not data:
        raise ValidationFailed(f"send at least one of: {', '.join(allowed)}", code="empty_change")
    change: Row = {}
    if "status" in data:
        change["status"] = parse_status(data["status"], statuses)
    if "provider_id" in data:
        value = data["provider_id"]
        change["provider_id"] = None if value is None else parse_id("provider_id", value)
    return change


def check_provider(tx: Tx, provider_id: int | None) -> None:
    if provider_id is not None and not tx.provider_exists(provider_id):
        raise ValidationFailed(
            f"provider {provider_id} does not exist; see 'leadrelay providers list'",
            code="unknown_provider",
        )


async def create_lead(
    store: Store,
    fields: Row,
    *,
    status: str,
    idempotency_key: str | None = None,
    socket_id: str | None = None,
) -> CreateResult:
    """Store a lead and its `lead.assigned` event in one durable transaction."""
    try:
        return await store.write(new_lead(fields, status, idempotency_key, socket_id))
    except LostRace as lost:
        return await lead_of_key(store, lost.key)


def new_lead(
    fields: Row, status: str, idempotency_key: str | None, socket_id: str | None
) -> Callable[[Tx], CreateResult]:
    """The write of `create_lead`; it raises LostRace when another request stored the same
    idempotency key first."""

    def create(tx: Tx) -> CreateResult:
        if idempotency_key is not None:
            earlier = created_by_key(tx.key_outcome(idempotency_key))
            if earlier is not None:
                return CreateResult(events.lead_view(_must(tx.get_lead(earlier))), False)
        if fields["external_id"] is not None:
            # the CRM's key: its create, sent again without an idempotency key, is safe too
            known = tx.lead_by_external_id(fields["external_id"])
            if known is not None:
                if idempotency_key is not None:
                    tx.claim_idempotency_key(idempotency_key, known["id"])
                return CreateResult(events.lead_view(known), False)
        check_provider(tx, fields["provider_id"])
        now = tx.now_iso
        lead = {**fields, "status": status, "created_at": now, "updated_at": now}
        # the lead's first event has seq 1, so the lead is stored with last_seq = 1
        lead["id"] = tx.insert_lead(lead, last_seq=1)
        # the key's PRIMARY KEY decides a race: the loser raises, and the writer's
        # savepoint undoes its lead; it then answers with the winner's
        if idempotency_key is not None and not tx.claim_idempotency_key(
            idempotency_key, lead["id"]
        ):
            raise LostRace(idempotency_key)
        tx.insert_event(events.lead_assigned(lead, 1, now).row(socket_id))
        return CreateResult(events.lead_view(lead), True)

    return create


async def lead_of_key(store: Store, key: str) -> CreateResult:
    """The lead an idempotency key stored, as a replay answers it."""
    lead_id = _must(created_by_key(await store.key_outcome(key)))
    return CreateResult(events.lead_view(_must(await store.get_lead(lead_id))), False)


def created_by_key(stored: tuple[int, Row | None] | None) -> int | None:
    """The lead a stored key (lead id, outcome) names, when a create stored it.  A status
    change stores an outcome with its key; a create none.  Only a webhook-id is shared by
    both endpoints (intake.py): one a status webhook stored is refused here."""
    if stored is None:
        return None
    lead_id, outcome = stored
    if outcome is not None:
        raise WebhookIdReused("POST /api/leads/status")
    return lead_id


class LostRace(Exception):
    """Another request stored the same idempotency key first."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _must(value: Any) -> Any:
    assert value is not None
    return value


async def change_lead(
    store: Store,
    lead_id: int,
    change: Row,
    *,
    actor: Principal,
    socket_id: str | None = None,
) -> Row:
    """Apply an admin's or a provider's change; write the events it fires, if any."""

    def apply(tx: Tx) -> Row:
        before = tx.lead_for_update(lead_id)
        if before is None or (not actor.is_admin and before["provider_id"] != actor.provider_id):
            raise lead_not_found(lead_id, actor)
        after, _ = apply_change(tx, before, change, actor.provider_id, socket_id=socket_id)
        return events.lead_view(after)

    return await store.write(apply)


def apply_change(
    tx: Tx,
    before: Row,
    change: Row,
    changed_by_provider: int | None,
    *,
    socket_id: str | None,
    crm: bool = False,
    extra: Row | None = None,
) -> tuple[Row, bool]:
    """Write `change` (and `extra`, columns no event is about) to the lead `before`, with
    the events it fires; return the lead after it and whether any event fired."""
    if "provider_id" in change:
        check_provider(tx, change["provider_id"])
    after = {**before, **change}
    fired = events.change_events(before, after)
    if not fired:
        if extra:
            tx.update_lead(before["id"], extra)
        return {**after, **(extra or {})}, False
    now = tx.now_iso
    after.update(extra or {}, updated_at=now)
    tx.update_lead(before["id"], {**change, **(extra or {}), "updated_at": now})
    for event_type in fired:
        seq = tx.next_seq(before["id"])
        if event_type == events.LEAD_ASSIGNED:
            event = events.lead_assigned(after, seq, now)
        else:
            event = events.lead_status_updated(
                after,
                seq,
                now,
                old_status=before["status"],
                changed_by_provider=changed_by_provider,
                crm=crm,
            )
        tx.insert_event(event.row(socket_id))
    return after, True


def lead_not_found(lead_id: int, actor: Principal) -> NotFound:
    """A provider is not told whether another provider's lead exists: one answer for both."""
    where = "" if actor.is_admin else " among your leads"
    return NotFound(f"there is no lead {lead_id}{where}", code="lead_not_found")


async def get_lead(store: Store, lead_id: int, *, actor: Principal) -> Row:
    lead = await store.get_lead(lead_id)
    if lead is None or (not actor.is_admin and lead["provider_id"] != actor.provider_id):
        raise lead_not_found(lead_id, actor)
    view = events.lead_view(lead)
    if actor.is_admin:
        view.update(
            notes=lead["notes"], external_id=lead["external_id"], erased_at=lead.get("erased_at")
        )
    return view


async def lead_id_by_external_id(store: Store, external_id: str) -> int:
    lead = await store.lead_by_external_id(external_id)
    if lead is None:
        raise NotFound(f"there is no lead with external_id {external_id!r}", code="lead_not_found")
    return int(lead["id"])


async def list_leads(
    store: Store,
    *,
    actor: Principal,
    status: str | None = None,
    provider_id: int | None = None,
    after: int = 0,
    limit: int = 50,
    external_id: str | None = None,
    newest_first: bool = False,
) -> list[Row]:
    if not actor.is_admin:
        provider_id = actor.provider_id
    rows = await store.list_leads(
        status=status,
        provider_id=provider_id,
        after=after,
        limit=limit,
        external_id=external_id,
        newest_first=newest_first,
    )
    return [events.lead_view(row) for row in rows]


def parse_query(value: str) -> list[str]:
    """A search query's terms (leadrelay/search.py); an empty list finds nothing."""
    refuse_nul("'q'", value, code="invalid_query")
    if len(value) > search.MAX_QUERY:
        raise ValidationFailed(
            f"'q' is {len(value)} characters long; at most {search.MAX_QUERY} are allowed",
            code="invalid_query",
        )
    return search.query_terms(value)


async def search_leads(
    store: Store,
    terms: list[str],
    *,
    actor: Principal,
    status: str | None = None,
    provider_id: int | None = None,
    after: int = 0,
    limit: int = 50,
    external_id: str | None = None,
    newest_first: bool = False,
) -> tuple[list[Row], bool]:
    """The leads `terms` find (a provider's own only), and whether the answer may leave out
    leads not indexed yet."""
    if not actor.is_admin:
        provider_id = actor.provider_id
    if not terms:
        return [], False
    rows, partial = await store.search_leads(
        terms,
        equal={"status": status, "provider_id": provider_id, "external_id": external_id},
        after=after,
        limit=limit,
        newest_first=newest_first,
    )
    return [events.lead_view(row) for row in rows], partial
