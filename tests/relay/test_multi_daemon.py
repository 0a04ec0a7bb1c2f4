"""Several `serve` on one PostgreSQL: every daemon takes leads and relays, none loses or
reorders an event, a dead daemon's claims run out and the others send those events.

Real parts: three `leadrelay serve` processes (each with its writer and relay children) on
one PostgreSQL database, a real soketi, a subscriber on its `admin` channel.  A daemon is
SIGKILLed with its whole process group in the middle of the load.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from typing import Any

import httpx
import psycopg
import pytest

from leadrelay import leads
from leadrelay.auth import token_prefix
from leadrelay.store import open_store
from support.load import Load
from support.serve import Serve, cli, point_at_soketi, stored_events
from support.soketi import Soketi
from support.subscriber import Subscriber, check_order_per_lead

pytestmark = [pytest.mark.slow, pytest.mark.soketi, pytest.mark.postgres]

CLAIM_SECONDS = 4.0
RELAY_ENV = {
    "LEADRELAY_RELAY_MAX_BACKOFF_SECONDS": "1",
    "LEADRELAY_RELAY_TIMEOUT_SECONDS": "1",
    "LEADRELAY_RELAY_CLAIM_SECONDS": str(CLAIM_SECONDS),
}


def delivered_by(url: str) -> dict[str, int]:
    """How many events each relay has claimed and not yet settled, by owner (a peek)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT lease_owner, count(*) FROM events WHERE lease_owner IS NOT NULL "
            "GROUP BY lease_owner"
        ).fetchall()
    return {str(owner): int(n) for owner, n in rows}


def wait_for(got: Any, expected: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not got() >= expected:
        time.sleep(0.1)


def test_three_daemons_share_the_outbox_and_survive_a_sigkill(pg_url: str, soketi: Soketi) -> None:
    acked: dict[int, int] = {}
    owners_seen: set[str] = set()
    with Subscriber(soketi, ["admin"]) as sub:
        daemons = [Serve(pg_url, env=RELAY_ENV).start()]
        try:
            point_at_soketi(pg_url, soketi)
            for _ in range(2):
                daemons.append(Serve(pg_url, env=RELAY_ENV))
                daemons[-1].admin_token = daemons[0].admin_token
                daemons[-1].start()
            loads = [Load(d, f"d{i}", acked) for i, d in enumerate(daemons)]
            peek_until = time.monotonic() + 3.0
            while time.monotonic() < peek_until:  # all three take leads and relay
                owners_seen.update(delivered_by(pg_url))
                time.sleep(0.05)
            killed_at = time.time()
            daemons[0].kill()  # SIGKILL: the daemon, its writer and its relay child
            time.sleep(2.0)
            for load in loads:
                load.finish()
            finished_at = time.time()

            with httpx.Client(base_url=daemons[1].url, headers=daemons[1].auth(), timeout=15) as c:
                stored = stored_events(c)
            expected = {
                e["event_id"]
                for e in stored
                if e["lead_id"] in acked and e["seq"] <= acked[e["lead_id"]]
            }
            # every acknowledged lead and change is stored, whichever daemon took it
            assert sum(acked.values()) == len(expected) > 100, (len(expected), len(acked))

            def got() -> set[str]:
                return {r.data["event_id"] for r in sub.on("admin") if isinstance(r.data, dict)}

            # the dead daemon's claims run out after CLAIM_SECONDS; the others send them
            wait_for(got, expected, CLAIM_SECONDS + 10)
            missing = expected - got()
            assert not missing, f"{len(missing)} acknowledged events never arrived"
            all_in = time.time()
            received = [
                r
                for r in sub.on("admin")
                if isinstance(r.data, dict) and r.data.get("event_id") in expected
            ]
            last_arrival = max(r.at for r in received)
            assert last_arrival - finished_at < CLAIM_SECONDS + 5, last_arrival - finished_at
            duplicates, stale = check_order_per_lead([r.data for r in received])

            arrivals: dict[str, list[float]] = defaultdict(list)
            for r in received:
                arrivals[r.data["event_id"]].append(r.at)
            copies = [t for times in arrivals.values() for t in times[1:]]
            early = [t for t in copies if t < killed_at]
            assert not early, f"{len(early)} copies while every daemon ran: a claim was shared"
            # more than one relay claimed events: every daemon relays, not one of them
            assert len(owners_seen) >= 2, owners_seen
            print(
                f"\nMULTI {len(expected)} acknowledged events from 3 daemons all arrived in "
                f"per-lead order, the last {last_arrival - killed_at:.1f}s after the SIGKILL "
                f"(claims {CLAIM_SECONDS:g}s); {duplicates} copies ({stale} stale), none "
                f"before the kill; {len(owners_seen)} relays seen claiming; "
                f"checked in {all_in - killed_at:.1f}s"
            )
        finally:
            for daemon in daemons:
                daemon.kill()


def listening(url: str) -> int:
    """The relays' LISTEN connections to the database."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
            "'leadrelay-listen' AND datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _create_without_waking(url: str, name: str) -> None:
    """A lead committed by this process through a store of its own, which sends no wake
    datagram (the CLI's does): only NOTIFY, or polling, tells the relay."""

    async def create() -> None:
        store = await open_store(url)
        try:
            await leads.create_lead(store, leads.parse_new_lead({"name": name}), status="new")
        finally:
            await store.close()

    asyncio.run(create())


def test_notify_wakes_relays_and_polling_catches_up_when_listen_drops(
    pg_url: str, soketi: Soketi
) -> None:
    poll = 5.0
    env = {**RELAY_ENV, "LEADRELAY_RELAY_POLL_SECONDS": str(poll)}
    with Subscriber(soketi, ["admin"]) as sub, Serve(pg_url, env=env) as daemon:
        # with Pusher not set up, the relay has nothing to wake for: it does not listen
        time.sleep(1.5)
        assert listening(pg_url) == 0, "a relay that cannot send holds a LISTEN connection"
        point_at_soketi(pg_url, soketi)

        def arrived_after(name: str, timeout: float) -> float:
            """Seconds from the commit to the event on the websocket."""
            _create_without_waking(pg_url, name)
            sent = time.monotonic()
            deadline = sent + timeout
            while time.monotonic() < deadline:
                for r in sub.on("admin"):
                    if isinstance(r.data, dict) and r.data["lead"]["name"] == name:
                        return time.monotonic() - sent
                time.sleep(0.02)
            raise AssertionError(f"{name!r} never arrived: {daemon.logs()[-2000:]}")

        arrived_after("warm up", 15)
        # a commit from another process, with no wake socket to reach: NOTIFY wakes the
        # relay at once; polling alone would take 0-5 s (all four under 1.5 s by chance: <1%)
        notified = max(arrived_after(f"notified {i}", 10) for i in range(4))
        assert notified < 1.5, f"not woken by NOTIFY: {notified:.2f}s"

        with psycopg.connect(pg_url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'leadrelay-listen' AND datname = current_database()"
            ).fetchall()
            assert killed, "the relay had no LISTEN connection"
            # a notification lost for good: an event committed with no NOTIFY at all (a
            # copy of the last one, as the next of its lead), which only polling finds
            conn.execute("UPDATE leads SET last_seq = last_seq + 1 WHERE name = 'warm up'")
            row = conn.execute(
                "SELECT lead_id, seq, payload FROM events ORDER BY id DESC LIMIT 1"
            ).fetchone()
            assert row is not None
            data = json.loads(row[2])
            data.update(event_id=str(uuid.uuid4()), seq=row[1] + 1)
            data["lead"]["name"] = "never notified"
            sent = time.monotonic()
            conn.execute(
                "INSERT INTO events (event_id, lead_id, seq, type, channels, payload, "
                "next_attempt_at, created_at) SELECT %s, lead_id, %s, type, channels, %s, "
                "extract(epoch from now()), extract(epoch from now()) FROM events "
                "WHERE lead_id = %s AND seq = %s",
                (data["event_id"], row[1] + 1, json.dumps(data), row[0], row[1]),
            )
        deadline = sent + poll + 10
        caught_up = None
        while time.monotonic() < deadline and caught_up is None:
            for r in sub.on("admin"):
                if isinstance(r.data, dict) and r.data["lead"]["name"] == "never notified":
                    caught_up = time.monotonic() - sent
            time.sleep(0.05)
        assert caught_up is not None, "nothing found the event nobody announced"
        assert caught_up < poll + 3, caught_up

        deadline = time.monotonic() + 15
        back = []
        while time.monotonic() < deadline and not back:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                back = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = "
                    "'leadrelay-listen' AND datname = current_database()"
                ).fetchall()
            time.sleep(0.2)
        assert back, "the relay never listened again"
        cli(pg_url, "pusher", "disable")
        assert until(lambda: listening(pg_url) == 0, 5), "a disabled relay still listens"
        print(
            f"\nLISTEN notified deliveries within {notified:.2f}s of the commit; an event "
            f"committed without NOTIFY, the LISTEN connection terminated, delivered "
            f"{caught_up:.2f}s later (the look on reconnecting, else the {poll:g}s poll); "
            "the LISTEN connection came back, and went with `pusher disable`"
        )


def test_fifty_identical_requests_across_two_daemons_make_one_lead(pg_url: str) -> None:
    """Idempotency is the database's: the copies race in through two daemons at once."""
    import asyncio
    from collections import Counter

    with Serve(pg_url, relay="off") as first, Serve(pg_url, relay="off") as second:
        second.admin_token = first.admin_token

        async def race() -> list[httpx.Response]:
            headers = {**first.auth(), "Idempotency-Key": "one-delivery"}
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:
                return list(
                    await asyncio.gather(
                        *(
                            client.post(
                                f"{(first, second)[i % 2].url}/api/leads",
                                json={"name": "Raced"},
                                headers=headers,
                            )
                            for i in range(50)
                        )
                    )
                )

        responses = asyncio.run(race())
        assert Counter(r.status_code for r in responses) == {201: 1, 200: 49}
        assert len({r.json()["id"] for r in responses}) == 1
        with httpx.Client(base_url=second.url, headers=second.auth(), timeout=10) as c:
            leads = c.get("/api/admin/leads").json()["leads"]
            assert [lead["name"] for lead in leads] == ["Raced"]
            assert len(stored_events(c)) == 1


def test_tokens_and_pusher_settings_are_the_same_on_every_daemon(
    pg_url: str, soketi: Soketi
) -> None:
    """A token made through one daemon's database works on the other; revoked, it stops on
    both within the 5 s a daemon keeps a token it has seen; `pusher disable` holds both
    relays, `pusher enable` frees both."""
    with Serve(pg_url, env=RELAY_ENV) as first, Serve(pg_url, env=RELAY_ENV) as second:
        second.admin_token = first.admin_token
        point_at_soketi(pg_url, soketi)
        made = json.loads(cli(pg_url, "tokens", "create", "--admin", "--json").stdout)
        token = made["token"]
        for daemon in (first, second):
            answer = httpx.get(f"{daemon.url}/api/admin/leads", headers=daemon.auth(token))
            assert answer.status_code == 200
        cli(pg_url, "tokens", "revoke", token_prefix(token))
        deadline = time.monotonic() + 8
        refused: set[int] = set()
        while time.monotonic() < deadline and len(refused) < 2:
            for i, daemon in enumerate((first, second)):
                got = httpx.get(f"{daemon.url}/api/admin/leads", headers=daemon.auth(token))
                if got.status_code == 401:
                    refused.add(i)
            time.sleep(0.2)
        assert refused == {0, 1}, "a revoked token still works on a daemon"

        cli(pg_url, "pusher", "disable")
        time.sleep(1.5)  # every relay follows within a second
        with Subscriber(soketi, ["admin"]) as sub:
            for daemon in (first, second):
                response = httpx.post(
                    f"{daemon.url}/api/leads", json={"name": "held"}, headers=daemon.auth()
                )
                assert response.status_code == 201
            time.sleep(1.5)
            assert not [r for r in sub.on("admin") if isinstance(r.data, dict)], "sent while off"
            cli(pg_url, "pusher", "enable")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if len([r for r in sub.on("admin") if isinstance(r.data, dict)]) >= 2:
                    break
                time.sleep(0.1)
            assert len([r for r in sub.on("admin") if isinstance(r.data, dict)]) == 2
