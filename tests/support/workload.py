"""Racing clients of several `leadrelay serve` on one database, recorded in a History.

Writers (asyncio tasks, one request at a time each) create leads with and without an
Idempotency-Key (sometimes the same key to two daemons at once), change statuses as admin and
as the lead's provider, reassign, send the CRM's status webhook twice for one lead to two
daemons at the same moment with `changed_at` an instant apart in either order, and erase.
Followers page through `GET /api/admin/events?after=…` and each provider's
`/api/provider/events` from the start until told to finish.  A nemesis (nemesis.py) injects
one fault while they run.  Every request goes to a daemon picked at random; every answer (or
transport error) is recorded as ok, fail or info (history.outcome).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from support.history import FAIL, INFO, OK, Event, History, outcome
from support.serve import Serve

STATUSES = ("new", "contacted", "qualified", "converted", "lost")
THROUGH = re.compile(r"after=(\d+)")
CRM_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
AFTER_HEAL_SECONDS = 1.0


@dataclass
class Lead:
    id: int
    provider_id: int | None
    external_id: str | None


@dataclass
class Workload:
    history: History
    daemons: list[Serve]
    providers: dict[int, str]  # id -> token
    seed: int
    writers: int = 10
    leads: list[Lead] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.stop = asyncio.Event()  # writers stop
        self.drained = asyncio.Event()  # followers read to the end once more, then stop
        self.open = asyncio.Event()  # writers wait while it is clear (a quiet moment)
        self.open.set()
        self.idle = 0  # writers waiting at the gate
        self.crm_clock = 0  # the CRM's clock: milliseconds after CRM_EPOCH
        self.clients: list[httpx.AsyncClient] = []

    async def __aenter__(self) -> Workload:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        for daemon in self.daemons:
            self.clients.append(
                httpx.AsyncClient(
                    base_url=daemon.url, headers=daemon.auth(), timeout=20, limits=limits
                )
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.clients:
            await client.aclose()

    # one request ------------------------------------------------------------------------
    async def call(
        self,
        process: str,
        f: str,
        method: str,
        path: str,
        *,
        daemon: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **value: Any,
    ) -> tuple[str, dict[str, Any]]:
        """Send one request to a daemon (at random unless named) and record it."""
        d = self.rng.randrange(len(self.daemons)) if daemon is None else daemon
        op = self.history.invoke(process, f, daemon=d, **value)
        try:
            response = await self.clients[d].request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            kind, got = outcome(None, exc)
        else:
            kind, got = outcome(response)
        self.history.complete(op, kind, got)
        if kind != OK:
            await asyncio.sleep(0.05)  # a dead daemon answers at once: no tight loop
        return kind, got

    # writers ----------------------------------------------------------------------------
    async def writer(self, n: int) -> None:
        process = f"w{n}"
        count = 0
        while not self.stop.is_set():
            if not self.open.is_set():
                self.idle += 1
                await self.open.wait()
                self.idle -= 1
                continue
            count += 1
            roll = self.rng.random()
            if roll < 0.3 or len(self.leads) < 5:
                await self.create(process, f"{process}-{self.seed}-{count}")
            elif roll < 0.5:
                await self.patch(process, admin=True)
            elif roll < 0.6:
                await self.patch(process, admin=False)
            elif roll < 0.66:
                await self.reassign(process)
            elif roll < 0.97:
                await self.crm_race(process)
            else:
                lead = self.rng.choice(self.leads)
                await self.call(
                    process, "erase", "DELETE", f"/api/admin/leads/{lead.id}", lead=lead.id
                )

    async def create(self, process: str, name: str) -> None:
        rng = self.rng
        fields: dict[str, Any] = {
            "name": name,
            "email": f"{name}@example.com" if rng.random() < 0.5 else None,
            "phone": f"+1555{rng.randrange(10**6):06d}" if rng.random() < 0.3 else None,
            "source": "checker" if rng.random() < 0.3 else None,
            "provider_id": rng.choice([None, *self.providers]),
            "external_id": f"crm-{name}" if rng.random() < 0.5 else None,
        }
        key = f"key-{name}" if rng.random() < 0.5 else None
        headers = {"Idempotency-Key": key} if key else None

        def post(who: str) -> Awaitable[tuple[str, dict[str, Any]]]:
            request = {"body": fields, "headers": headers}
            return self.call(who, "create", "POST", "/api/leads", **request, key=key, **fields)

        sends = [post(process)]
        if key and rng.random() < 0.3:  # the same key to two daemons at once
            sends.append(post(f"{process}'"))
        results = list(await asyncio.gather(*sends))
        if key and all(kind != OK for kind, _ in results):  # a CRM sends it again
            results.append(await post(process))
        for kind, got in results:
            if kind == OK:
                lead = Lead(got["body"]["id"], fields["provider_id"], fields["external_id"])
                if all(known.id != lead.id for known in self.leads):
                    self.leads.append(lead)

    async def patch(self, process: str, *, admin: bool) -> None:
        lead = self.rng.choice(self.leads)
        status = self.rng.choice(STATUSES)
        if admin:
            await self.call(
                process,
                "patch",
                "PATCH",
                f"/api/admin/leads/{lead.id}",
                body={"status": status},
                lead=lead.id,
                status=status,
                role="admin",
            )
            return
        if lead.provider_id is None:
            return
        token = self.providers[lead.provider_id]
        await self.call(
            process,
            "patch",
            "PATCH",
            f"/api/provider/leads/{lead.id}",
            body={"status": status},
            headers={"Authorization": f"Bearer {token}"},
            lead=lead.id,
            status=status,
            role="provider",
        )

    async def reassign(self, process: str) -> None:
        lead = self.rng.choice(self.leads)
        body: dict[str, Any] = {"provider_id": self.rng.choice([None, *self.providers])}
        if self.rng.random() < 0.4:  # both in one write: lead.assigned, then the status
            body["status"] = self.rng.choice(STATUSES)
        kind, _ = await self.call(
            process,
            "patch",
            "PATCH",
            f"/api/admin/leads/{lead.id}",
            body=body,
            lead=lead.id,
            role="admin",
            **body,
        )
        if kind == OK:
            lead.provider_id = body["provider_id"]

    async def crm_race(self, process: str) -> None:
        """The CRM's webhook for one lead, twice at the same moment to two daemons: one
        `changed_at` a millisecond or more older than the other, sent in either order."""
        lead = self.rng.choice(self.leads)
        self.crm_clock += self.rng.randrange(1, 20)
        newer = self.crm_clock
        older = newer - self.rng.randrange(1, 40)
        pair = [(newer, self.rng.choice(STATUSES)), (older, self.rng.choice(STATUSES))]
        self.rng.shuffle(pair)
        daemons = self.rng.sample(range(len(self.daemons)), min(2, len(self.daemons)))
        sends = []
        for i, (ms, status) in enumerate(pair):
            at = CRM_EPOCH + timedelta(milliseconds=ms)
            body: dict[str, Any] = {"status": status, "changed_at": at.isoformat()}
            if lead.external_id and self.rng.random() < 0.5:
                body["external_id"] = lead.external_id
            else:
                body["id"] = lead.id
            micros = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            sends.append(
                self.call(
                    f"{process}{'ab'[i]}",
                    "crm",
                    "POST",
                    "/api/leads/status",
                    daemon=daemons[i % len(daemons)],
                    body=body,
                    lead=lead.id,
                    status=status,
                    changed_at=micros,
                )
            )
        await asyncio.gather(*sends)

    # followers --------------------------------------------------------------------------
    async def follower(self, name: str, scope: Any, start: int) -> None:
        """Page through an events API from the start, as a console catching up does."""
        path = "/api/admin/events" if scope == "admin" else "/api/provider/events"
        headers = None if scope == "admin" else {"Authorization": f"Bearer {self.providers[scope]}"}
        after, d, last_pass = 0, start, False
        while True:
            ending = self.drained.is_set()
            op = self.history.invoke(name, "read", scope=scope, after=after, daemon=d)
            try:
                response = await self.clients[d].get(
                    path, params={"after": after, "limit": 1000}, headers=headers
                )
            except httpx.HTTPError as exc:
                self.history.complete(op, *outcome(None, exc))
                d = (d + 1) % len(self.daemons)
                await asyncio.sleep(0.05)
                continue
            if response.status_code == 410:
                self.history.complete(op, FAIL, {"http": 410})
                match = THROUGH.search(response.json()["error"]["message"])
                assert match, response.text
                self.history.note(name, "jump", scope=scope, after=after, to=int(match[1]))
                after = int(match[1])
                continue
            if response.status_code != 200:
                self.history.complete(
                    op,
                    INFO if response.status_code >= 500 else FAIL,
                    {"http": response.status_code},
                )
                d = (d + 1) % len(self.daemons)
                await asyncio.sleep(0.05)
                continue
            page = response.json()
            events = [Event.of_item(item) for item in page["events"]]
            self.history.complete(op, OK, {"events": events, "next_after": page["next_after"]})
            after = page["next_after"]
            if not events:
                if last_pass:
                    return
                last_pass = ending  # once drained, one more empty read after the signal
                await asyncio.sleep(0.01)

    # a run ------------------------------------------------------------------------------
    async def run(
        self, seconds: float, nemesis: Callable[[Workload], Awaitable[None]] | None = None
    ) -> None:
        """Writers and followers for `seconds`, the nemesis beside them, and on for
        AFTER_HEAL_SECONDS once it healed; then the writers stop (the followers go on until
        `finish_followers`)."""
        followers = [
            asyncio.create_task(self.follower(f"admin{i}", "admin", i % len(self.daemons)))
            for i in range(2)
        ]
        followers += [
            asyncio.create_task(self.follower(f"provider{p}", p, i % len(self.daemons)))
            for i, p in enumerate(self.providers)
        ]
        writers = [asyncio.create_task(self.writer(n)) for n in range(self.writers)]
        fault = asyncio.create_task(nemesis(self)) if nemesis else None
        await asyncio.sleep(seconds)
        if fault is not None:  # and load goes on for a while after the fault healed
            await fault
            await asyncio.sleep(AFTER_HEAL_SECONDS)
        self.stop.set()
        self.open.set()
        await asyncio.gather(*writers)
        self.followers = followers

    async def finish_followers(self) -> None:
        self.drained.set()
        await asyncio.wait_for(asyncio.gather(*self.followers), 60)
