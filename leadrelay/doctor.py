"""`leadrelay doctor`: check what an operator would check, and say what to fix."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

from leadrelay.config import Settings, is_postgres
from leadrelay.errors import LeadrelayError, PusherError
from leadrelay.events import Broadcast
from leadrelay.pusher import config as pusher_config
from leadrelay.store import open_store
from leadrelay.store.base import OUTBOX_COUNTERS, RELAY_STATE_KEY, Store

Check = dict[str, Any]


def _check(name: str, status: str, detail: str) -> Check:
    return {"name": name, "status": status, "detail": detail}


async def run_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    if not is_postgres(settings.db):  # a SQLite file: it must exist and be private
        path = Path(settings.db)
        if not path.exists():
            return [
                _check(
                    "database",
                    "fail",
                    f"{path.absolute()} does not exist; create it with 'leadrelay init'",
                )
            ]
        mode = stat.S_IMODE(os.stat(path).st_mode)
        checks.append(
            _check("database file", "ok", f"{path} is private (0600)")
            if mode & 0o077 == 0
            else _check("database file", "fail", f"{path} is mode {mode:o}; run 'chmod 600 {path}'")
        )
    try:
        store = await open_store(settings.db)
    except LeadrelayError as exc:
        return [*checks, _check("database", "fail", str(exc))]
    try:
        checks.append(await _database(store))
        checks.append(await _external_ids(store))
        checks.extend(await _pusher(store))
        checks.append(await _lease(store))
        checks.append(await _privacy(store, settings))
        checks.extend(await _ledger(store))
    finally:
        await store.close()
    return checks


async def _database(store: Store) -> Check:
    problem = await store.integrity_problem()
    if problem is not None:
        return _check("database", "fail", f"{problem}; restore a backup")
    try:
        await store.check_writable()
    except LeadrelayError as exc:
        return _check("database", "fail", str(exc))
    return _check("database", "ok", "intact and writable")


async def _external_ids(store: Store) -> Check:
    """Leads that shared an external_id before it was unique: kept, not merged, and named."""
    found = await store.external_id_duplicates(10)
    if not found:
        return _check("external ids", "ok", "unique among leads")
    listed = ", ".join(f"lead {row['first_id']} and {row['leads'] - 1} more" for row in found)
    return _check(
        "external ids",
        "warn",
        f"leads stored before external_id was unique share one: {listed}"
        f"{', …' if len(found) == 10 else ''}. Nothing was merged; status webhooks and creates "
        "by external_id find the first of each; 'GET /api/admin/leads?external_id=…' lists all",
    )


async def _pusher(store: Store) -> list[Check]:
    from leadrelay.pusher.http import test_connection

    config = await pusher_config.load(store)
    if not config.complete:
        return [
            _check(
                "pusher settings",
                "fail",
                "not configured: run 'leadrelay pusher set --app-id … --key … --secret …'",
            )
        ]
    checks = [
        _check("pusher settings", "ok", f"{config.base_url} app {config.app_id}")
        if config.enabled
        else _check(
            "pusher settings", "warn", "relaying is disabled: run 'leadrelay pusher enable'"
        )
    ]
    try:
        result = await test_connection(config)
        checks.append(_check("pusher reachable", "ok", f"answered in {result['http_ms']} ms"))
    except PusherError as exc:
        checks.append(_check("pusher reachable", "fail", str(exc)))
    relay = await store.get_setting(RELAY_STATE_KEY) or {}
    if relay.get("paused_reason"):
        checks.append(_check("relay", "fail", f"paused: {relay['paused_reason']}"))
    return checks


async def _privacy(store: Store, settings: Settings) -> Check:
    mode = Broadcast.of(settings)
    warning = mode.warning()
    if warning is not None:
        return _check("lead privacy", "warn", warning)
    if mode.encrypted and (await pusher_config.load(store)).master_key is None:
        return _check(
            "lead privacy",
            "fail",
            "encrypted_channels is on but no encryption master key is set, so nothing is "
            "relayed: run 'openssl rand -base64 32 | leadrelay pusher set "
            "--encryption-master-key -'",
        )
    if mode.encrypted:
        what = "end-to-end encrypted"
    else:
        what = "public" if mode.admin == "admin" else "private"
    data = "with" if mode.personal_data else "without"
    detail = f"the admin feed is {what} ({mode.admin}), {data} name, email and phone"
    return _check("lead privacy", "ok", detail)


async def _lease(store: Store) -> Check:
    from leadrelay.outbox import relay_lease

    lease = await relay_lease(store)
    if lease.get("claims_per_event"):
        return _check(
            "relay lease",
            "ok",
            "none needed: every serve on this PostgreSQL database relays, each claiming "
            "the events it sends",
        )
    if not lease["held"]:
        return _check(
            "relay lease",
            "warn",
            "no relay holds it: events wait until a 'leadrelay serve' runs on this database",
        )
    return _check(
        "relay lease",
        "ok",
        f"{lease['holder']} relays (renewed {lease['renewed_seconds_ago']:g} s ago); "
        "any other serve on this database stands by",
    )


def _of_them_pusher_api(counts: dict[str, int]) -> str:
    """The Pusher API's share of the ledger, when there is one."""
    api = counts["api_pending"] + counts["api_delivered"] + counts["api_dead"]
    if not api:
        return ""
    return (
        f"; of them {api} from apps' Pusher API triggers ({counts['api_delivered']} "
        f"delivered, {counts['api_pending']} pending, {counts['api_dead']} dead-lettered)"
    )


async def _ledger(store: Store) -> list[Check]:
    counts = await store.counted_outbox()  # a scan: doctor checks what the counters say
    kept = await store.outbox_counts()
    accounted = counts["pending"] + counts["delivered"] + counts["dead"]
    problems = await store.ledger_problems()
    if accounted != counts["total"] or problems:
        ids = ", ".join(str(p["id"]) for p in problems)
        detail = f"{counts['total'] - accounted} events in no known state; rows {ids}"
        checks = [_check("outbox ledger", "fail", detail)]
    else:
        checks = [
            _check(
                "outbox ledger",
                "ok",
                f"{counts['total']} events: {counts['delivered']} delivered, "
                f"{counts['pending']} pending, {counts['dead']} dead-lettered with a reason"
                + _of_them_pusher_api(counts),
            )
        ]
    drift = [
        f"{name} {kept[name]} (counted {counts[name]})"
        for name in OUTBOX_COUNTERS
        if kept[name] != counts[name]
    ]
    if drift:
        checks.append(
            _check(
                "outbox counters",
                "fail",
                "the counters /metrics reads disagree with the events table: "
                + ", ".join(drift)
                + "; was the database changed by hand?",
            )
        )
    if counts["dead"]:
        checks.append(
            _check(
                "dead letters",
                "warn",
                f"{counts['dead']} events gave up; see 'leadrelay outbox failed', then "
                "'leadrelay outbox retry --all'",
            )
        )
    oldest = counts["oldest_pending"]
    if oldest is not None and time.time() - oldest > 60:
        age = time.time() - oldest
        checks.append(
            _check(
                "backlog",
                "warn",
                f"{counts['pending']} events pending, the oldest {age:.0f} s; "
                "is 'leadrelay serve' running and Pusher enabled?",
            )
        )
    return checks
