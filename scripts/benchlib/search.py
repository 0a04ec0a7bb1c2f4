"""Search and stats rows: GET /api/admin/leads?q= and GET /api/admin/stats on a million leads,
on SQLite and on PostgreSQL, beside the plain list (GET /api/admin/leads?order=newest) asked
of the same daemon in the same run.

The leads are made up (a few hundred first and last names, so that a name is shared by many
leads as in life) and written straight into the database the daemon made, with the counters'
triggers running as they do for leads posted through the API; their keys are then written
by the indexer leadrelay runs (store/search_index.py), timed. The speed-to-contact histogram
is filled with a month of first contacts for every provider (the size a busy month makes; its
cost to read does not depend on the number of leads). Each request is timed over one
keep-alive connection, one at a time, after a few untimed ones; the searches cycle through
kinds a person types: a full name, a last name, three letters, the start of an email, seven
digits of a phone, a CRM id, and a word nobody has.
"""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchlib.plan import Plan
from benchlib.postgres import _database, postgres_server
from benchlib.procs import BenchError
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay, run_cli

TARGET_MS = 50.0
PROVIDERS = 10
WARMUP = 5
FIRST = (
    "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Carlos Maria Omar Fatima Mei Wei Priya Raj "
    "Ahmed Aisha Yuki Kenji Sven Ingrid Lars Olga Ivan Sofia Luca Giulia Pierre Camille Hans "
    "Anna Jan Eva Noah Mia Liam Emma Lucas Zoe Mateo Lucia Ali Layla Chen Hana Tom Ada"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Haddad Lin Ruiz Lovelace Müller Rossi Tanaka Kowalski Dubois Berg Ito Khan "
    "Jensen Novak Horvat Silva Costa Ferreira Almeida Okafor Mensah Abdullah Hussain Kim Park"
).split()
DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "corp.example")
STATUSES = (("new", 40), ("contacted", 25), ("qualified", 15), ("converted", 10), ("lost", 10))
KINDS = "a name, a last name, three letters, an email's start, phone digits, a CRM id, none"
COLUMNS = "name, email, phone, status, provider_id, source, external_id, created_at, updated_at"


def made_up_leads(count: int, providers: list[int], now: float) -> Iterator[tuple[Any, ...]]:
    """`count` leads over the last 30 days, oldest first, the same in every run."""
    rnd = random.Random(7)
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    for n in range(1, count + 1):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        at = datetime.fromtimestamp(now - 30 * 86400 * (1 - n / count), UTC)
        stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        yield (
            f"{first} {last}",
            f"{first}.{last}{n}@{rnd.choice(DOMAINS)}".lower(),
            f"+1 {rnd.randrange(200, 999)} {rnd.randrange(10**7):07d}",
            rnd.choice(statuses),
            None if rnd.random() < 0.2 else rnd.choice(providers),
            rnd.choice(("website", "google-ads", "referral", "crm")),
            f"CRM-{n:07d}",
            stamp,
            stamp,
        )


def queries(count: int) -> list[tuple[str, str]]:
    """(kind, q) pairs, several of each kind, drawn from the same made-up leads."""
    picked = list(made_up_leads(count, [1], time.time()))
    rnd = random.Random(11)
    found: list[tuple[str, str]] = []
    for _ in range(6):
        name, email, phone, *_, external_id, _at, _up = rnd.choice(picked)
        first, last = name.split(" ", 1)
        found += [
            ("full name", name),
            ("last name", last),
            ("three letters", first[:3]),
            ("email start", email[: email.index("@")]),
            ("phone digits", phone.replace(" ", "")[-7:]),
            ("CRM id", external_id),
            ("no match", f"zqxv{rnd.randrange(1000)}"),
        ]
    return found


def fill_sqlite(db: Path, count: int, providers: list[int], now: float) -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    try:
        conn.execute("BEGIN")
        marks = ", ".join("?" * (COLUMNS.count(",") + 1))
        conn.executemany(
            f"INSERT INTO leads ({COLUMNS}) VALUES ({marks})", made_up_leads(count, providers, now)
        )
        conn.executemany(
            "INSERT INTO contact_times (day, provider_id, bucket, n) VALUES (?, ?, ?, ?)",
            contacts(providers, now),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def fill_postgres(url: str, count: int, providers: list[int], now: float) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        with conn.cursor().copy(f"COPY leads ({COLUMNS}) FROM STDIN") as copy:
            for row in made_up_leads(count, providers, now):
                copy.write_row(row)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO contact_times (slot, day, provider_id, bucket, n) "
                "VALUES (0, %s, %s, %s, %s)",
                list(contacts(providers, now)),
            )


def contacts(providers: list[int], now: float) -> Iterator[tuple[str, int, int, int]]:
    """A month of first contacts a provider: counts in 40 buckets (30 s to half a day)."""
    rnd = random.Random(13)
    for days in range(31):
        day = datetime.fromtimestamp(now - days * 86400, UTC).strftime("%Y-%m-%d")
        for provider in providers:
            for bucket in range(28, 68):
                yield day, provider, bucket, rnd.randrange(1, 40)


def timed(
    client: httpx.Client, path: str, samples: int, params: Callable[[int], dict[str, Any]]
) -> list[float]:
    for n in range(WARMUP):
        client.get(path, params=params(n)).raise_for_status()
    took = []
    for n in range(samples):
        start = time.perf_counter()
        client.get(path, params=params(n)).raise_for_status()
        took.append((time.perf_counter() - start) * 1000)
    return took


def summary(took: list[float]) -> dict[str, float]:
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 2), "p99_ms": round(p99, 2), "n": len(took)}


def measure_backend(
    plan: Plan, soketi: Soketi, work: Path, db: Path | str, name: str
) -> dict[str, Any]:
    lr = Leadrelay(db, soketi, work)
    lr.start(f"{name}-setup", relaying=False)  # makes the database, a token, the settings
    try:
        added = [
            run_cli("providers", "add", f"Provider {n}", "--json", db=db)
            for n in range(1, PROVIDERS + 1)
        ]
    finally:
        lr.stop()
    providers = [json.loads(text) for text in added]
    ids = [p["id"] for p in providers]
    now = time.time()
    started = time.monotonic()
    if isinstance(db, Path):
        fill_sqlite(db, plan.search_leads, ids, now)
    else:
        fill_postgres(db, plan.search_leads, ids, now)
    filled = time.monotonic() - started

    from leadrelay.store import search_index

    started = time.monotonic()
    indexed = search_index.index_pending(db, busy_share=1.0)
    indexing = time.monotonic() - started
    if indexed != plan.search_leads:
        raise BenchError(
            f"{name}: the indexer wrote the keys of {indexed} leads, not {plan.search_leads}"
        )

    lr.start(name, relaying=False)
    try:
        admin = httpx.Client(
            base_url=lr.url, headers={"Authorization": f"Bearer {lr.token}"}, timeout=30
        )
        mine = httpx.Client(
            base_url=lr.url,
            headers={"Authorization": f"Bearer {providers[0]['token']}"},
            timeout=30,
        )
        asked = queries(plan.search_leads)
        n = plan.search_samples
        by_kind: dict[str, list[float]] = {}
        search = timed(
            admin,
            "/api/admin/leads",
            n,
            lambda i: {"q": asked[i % len(asked)][1], "order": "newest", "limit": 50},
        )
        for i, took in enumerate(search):
            by_kind.setdefault(asked[i % len(asked)][0], []).append(took)
        figures = {
            "leads": plan.search_leads,
            "fill_s": round(filled, 1),
            "index_s": round(indexing, 1),
            "indexed_per_s": round(indexed / indexing) if indexing else None,
            "list": summary(
                timed(admin, "/api/admin/leads", n, lambda i: {"order": "newest", "limit": 50})
            ),
            "search": summary(search),
            "search_by_kind": {kind: summary(took) for kind, took in by_kind.items()},
            "provider_search": summary(
                timed(
                    mine,
                    "/api/provider/leads",
                    n,
                    lambda i: {"q": asked[i % len(asked)][1], "order": "newest", "limit": 50},
                )
            ),
            "stats": summary(timed(admin, "/api/admin/stats", n, lambda i: {"window_days": 30})),
        }
        found = admin.get("/api/admin/leads", params={"q": asked[0][1]}).json()["leads"]
        if not found:
            raise BenchError(f"{name}: a search for an existing lead's name found nothing")
        admin.close()
        mine.close()
        return figures
    finally:
        lr.stop()


def measure_search(
    plan: Plan,
    soketi: Soketi,
    work: Path,
    results: RunResults,
    leadrelay_ready: Callable[[], str | None],
) -> None:
    raw: dict[str, Any] = {}
    notes: list[str] = []
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        raw["sqlite"] = measure_backend(plan, soketi, work, work / "search.db", "lr-search-sqlite")
        with postgres_server(work, results, "search") as server:
            raw["postgres"] = measure_backend(
                plan, soketi, work, _database(server, "bench_search"), "lr-search-pg"
            )
    except BenchError as exc:
        notes.append(str(exc))
        results.problems.append(f"search rows: {exc}")
    results.raw["search"] = raw
    for backend, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        run = raw.get(backend, {})
        listed = run.get("list", {})
        for key, what in (
            ("search", f"Search: GET /api/{{admin,provider}}/leads?q= ({KINDS})"),
            ("stats", "Stats: GET /api/admin/stats (window 30 days)"),
        ):
            figure = run.get(key, {})
            p99 = figure.get("p99_ms")
            text = f"p50 {figure['p50_ms']} ms · p99 {p99} ms" if figure else "not run"
            if key == "search" and figure:
                # the row's figure: the worse of the admin's search and a provider's
                mine = run["provider_search"]
                p99 = max(p99, mine["p99_ms"])
                text = (
                    f"admin p50 {figure['p50_ms']} ms · p99 {figure['p99_ms']} ms; "
                    f"a provider's p50 {mine['p50_ms']} ms · p99 {mine['p99_ms']} ms; "
                    f"keys written {run['indexed_per_s']:,} leads/s"
                )
            results.rows.append(
                Row(
                    measure=f"{what}, {plan.search_leads:,} leads on {label}",
                    target=f"≤ {TARGET_MS:g} ms p99",
                    leadrelay=p99,
                    leadrelay_text=text,
                    peer_name="the plain list (order=newest, 50 leads), same daemon",
                    peer=listed.get("p99_ms"),
                    peer_text=f"p50 {listed['p50_ms']} ms · p99 {listed['p99_ms']} ms"
                    if listed
                    else "not run",
                    ratio_text=fmt_ratio(ratio(p99, listed.get("p99_ms"))),
                    met=None if p99 is None else p99 <= TARGET_MS,
                    notes=notes,
                )
            )
