"""The day at a glance (GET /api/admin/stats, GET /api/provider/stats): leads by status, who
waits and for how long, and each provider's open leads, assignments today and speed to
contact, from the counters the database keeps (store/stats_reads.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from leadrelay import speed
from leadrelay.config import Settings
from leadrelay.crm_status import parse_changed_at
from leadrelay.errors import ValidationFailed
from leadrelay.events import iso_time
from leadrelay.store.base import Row, Store

MAX_WINDOW_DAYS = 90
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DAY_HOURS = 48  # how far back "today" may start (a day in any time zone, and then some)


def hour_key(moment: datetime) -> str:
    """The counters' hour: '2026-12-06T21' in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def parse_since(value: str | None, now: datetime) -> datetime:
    """The start of "today" as the caller's clock has it (RFC 3339, default 00:00 UTC),
    within the last MAX_DAY_HOURS (an earlier or later time is moved to the nearest end),
    counted from its whole hour in UTC."""
    since = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if value is not None:
        try:
            micros = parse_changed_at(value)
        except ValidationFailed:
            raise ValidationFailed(
                "'since' must be an RFC 3339 time with its offset, e.g. 2026-12-06T00:00:00+01:00",
                code="invalid_query",
            ) from None
        # moved into range as a number first: a time past 9999 has no datetime
        low = (now - timedelta(hours=MAX_DAY_HOURS) - EPOCH) // timedelta(microseconds=1)
        high = (now - EPOCH) // timedelta(microseconds=1)
        since = EPOCH + timedelta(microseconds=min(high, max(low, micros)))
    since = min(now, max(now - timedelta(hours=MAX_DAY_HOURS), since))
    return since.replace(minute=0, second=0, microsecond=0)


def _window_start(now: datetime, window_days: int) -> str:
    """The first UTC day of a window of `window_days` calendar days ending today."""
    return (now - timedelta(days=window_days - 1)).strftime("%Y-%m-%d")


def _hours(since: datetime, now: datetime, rows: list[Row]) -> list[dict[str, Any]]:
    created: dict[str, int] = {}
    for row in rows:
        created[row["hour"]] = created.get(row["hour"], 0) + int(row["created"])
    hours = []
    moment = since
    while moment <= now:
        key = hour_key(moment)
        hours.append(
            {"hour": moment.strftime("%Y-%m-%dT%H:00:00Z"), "created": created.get(key, 0)}
        )
        moment += timedelta(hours=1)
    return hours


def _contact(rows: list[Row], provider_id: int | None) -> dict[str, Any]:
    mine = [
        (int(r["bucket"]), int(r["n"])) for r in rows if provider_id in (None, r["provider_id"])
    ]
    return {"median_contact_seconds": speed.median(mine), "contacted": sum(n for _, n in mine)}


async def admin_stats(
    store: Store, settings: Settings, *, since: datetime, window_days: int, now: datetime
) -> dict[str, Any]:
    counts = await store.lead_counts()
    statuses = {status: 0 for status in settings.statuses}
    for row in counts:
        statuses[row["status"]] = statuses.get(row["status"], 0) + int(row["n"])
    open_ = set(settings.open_statuses)
    waiting = sum(int(r["n"]) for r in counts if r["provider_id"] == 0 and r["status"] in open_)
    oldest = await store.oldest_unassigned(settings.open_statuses) if waiting else None
    hours = await store.lead_hours(hour_key(since))
    contacts = await store.contact_times(_window_start(now, window_days))
    providers = []
    for provider in await store.list_providers():
        pid = provider["id"]
        mine = [r for r in counts if r["provider_id"] == pid]
        providers.append(
            {
                "id": pid,
                "name": provider["name"],
                "open": sum(int(r["n"]) for r in mine if r["status"] in open_),
                "waiting": sum(int(r["n"]) for r in mine if r["status"] == settings.statuses[0]),
                "assigned_today": sum(int(r["assigned"]) for r in hours if r["provider_id"] == pid),
                **_contact(contacts, pid),
            }
        )
    oldest_at = oldest["created_at"] if oldest else None
    return {
        **_frame(since, window_days, now),
        "statuses": statuses,
        "total": sum(statuses.values()),
        "open": sum(n for status, n in statuses.items() if status in open_),
        "unassigned": {
            "waiting": waiting,
            "oldest_created_at": oldest_at,
            "oldest_age_seconds": _age(oldest_at, now),
        },
        "hours": _hours(since, now, hours),
        "providers": providers,
        "contact": _contact(contacts, None),
    }


async def provider_stats(
    store: Store,
    settings: Settings,
    provider_id: int,
    *,
    since: datetime,
    window_days: int,
    now: datetime,
) -> dict[str, Any]:
    """The provider's own figures: its leads by status, open and waiting for it, its
    assignments today and its speed to contact."""
    statuses = {status: 0 for status in settings.statuses}
    for row in await store.lead_counts(provider_id):
        statuses[row["status"]] = statuses.get(row["status"], 0) + int(row["n"])
    hours = await store.lead_hours(hour_key(since), provider_id)
    contacts = await store.contact_times(_window_start(now, window_days), provider_id)
    return {
        **_frame(since, window_days, now),
        "statuses": statuses,
        "open": sum(n for status, n in statuses.items() if status in settings.open_statuses),
        "waiting": statuses[settings.statuses[0]],
        "assigned_today": sum(int(r["assigned"]) for r in hours),
        **_contact(contacts, provider_id),
    }


def _frame(since: datetime, window_days: int, now: datetime) -> dict[str, Any]:
    return {
        "generated_at": iso_time(now.timestamp()),
        "since": iso_time(since.timestamp()),
        "window_days": window_days,
    }


def _age(created_at: str | None, now: datetime) -> float | None:
    if created_at is None:
        return None
    then = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return round(max(0.0, (now - then).total_seconds()), 1)
