"""The intake rate limit as clients meet it: 429, Retry-After, the error body, per key.

POST /api/leads is limited per token (a token's hash), or per client address for signed
webhooks, which carry no token. The check runs after authentication (a wrong token is a
401, never a 429) and before the body is validated, so refused bodies count too. Reads are
not limited.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from leadrelay import accounts
from leadrelay.config import Settings
from leadrelay.web import webhook_secrets
from leadrelay.web.ratelimit import RateLimiter
from leadrelay.web.webhooks import sign_headers
from support.app import InProcess, running_app
from support.serve import Serve

pytestmark = pytest.mark.anyio

RATE, BURST = 1, 5  # a token a second, five at once


class ManualClock:
    """The in-process limiter's clock, moved by the test alone: a busy machine's slow
    requests refill no token behind its back (five durable writes took over a second with
    two CPU hogs beside the suite, and the sixth request found a token)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def limited_app(settings: Settings) -> AsyncIterator[tuple[InProcess, ManualClock]]:
    """The app with its limiter on a ManualClock."""
    clock = ManualClock()
    async with running_app(settings) as lr:
        lr.state.limiter = RateLimiter(
            settings.rate_limit_per_second, settings.rate_limit_burst, clock=clock
        )
        yield lr, clock


@pytest.fixture
def limited(tmp_path: Path) -> Settings:
    return Settings(
        db=tmp_path / "leadrelay.db",
        relay="off",
        rate_limit_per_second=RATE,
        rate_limit_burst=BURST,
    )


@asynccontextmanager
async def client_from(lr: InProcess, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the same running app, as seen from `address`."""
    transport = httpx.ASGITransport(app=lr.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://leadrelay.test") as client:
        yield client


async def lead_count(lr: InProcess) -> int:
    row = await lr.store.fetch_one("SELECT count(*) AS n FROM leads")
    assert row is not None
    return int(row["n"])


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
    error = response.json()["error"]
    assert set(response.json()) == {"error"} and set(error) == {"code", "message"}
    assert error["code"] == "rate_limited" and retry_after in error["message"]


async def test_sixth_quick_request_is_429_with_retry_after(limited: Settings) -> None:
    async with limited_app(limited) as (lr, clock):
        for n in range(BURST):
            assert (await lr.create_lead(name=f"Lead {n}")).status_code == 201
        assert_limited(await lr.create_lead(name="One too many"))
        assert await lead_count(lr) == BURST
        events = await lr.store.fetch_one("SELECT count(*) AS n FROM events")
        assert events == {"n": BURST}


async def test_waiting_as_told_lets_the_next_request_through(limited: Settings) -> None:
    async with limited_app(limited) as (lr, clock):
        for _ in range(BURST):
            await lr.create_lead()
        assert_limited(await lr.create_lead())
        clock.now += 1.05 / RATE  # one token's refill, well within Retry-After: 1
        assert (await lr.create_lead()).status_code == 201


async def test_each_token_has_its_own_bucket(limited: Settings) -> None:
    async with limited_app(limited) as (lr, clock):
        other = await accounts.create_admin_token(lr.store)
        assert other is not None
        for _ in range(BURST):
            await lr.create_lead()
        assert_limited(await lr.create_lead())
        assert (await lr.create_lead(token=other)).status_code == 201


async def test_a_token_is_limited_whatever_address_it_comes_from(limited: Settings) -> None:
    async with limited_app(limited) as (lr, clock):
        for n in range(BURST):
            async with client_from(lr, f"10.0.0.{n + 1}") as client:
                response = await client.post("/api/leads", json={"name": "A"}, headers=lr.auth())
                assert response.status_code == 201
        async with client_from(lr, "10.0.0.99") as client:
            assert_limited(await client.post("/api/leads", json={"name": "A"}, headers=lr.auth()))


async def test_signed_webhooks_are_limited_per_client_address(limited: Settings) -> None:
    async with limited_app(limited) as (lr, clock):
        secret = await webhook_secrets.current_secret(lr.store)

        def signed(n: int) -> tuple[bytes, dict[str, str]]:
            body = json.dumps({"name": f"Webhook {n}"}).encode()
            return body, {"Content-Type": "application/json", **sign_headers(secret, body)}

        async with client_from(lr, "192.0.2.1") as crm, client_from(lr, "192.0.2.2") as other:
            for n in range(BURST):
                body, headers = signed(n)
                assert (await crm.post("/api/leads", content=body, headers=headers)).is_success
            body, headers = signed(99)
            assert_limited(await crm.post("/api/leads", content=body, headers=headers))
            response = await other.post("/api/leads", content=body, headers=headers)
            assert response.status_code == 201
        assert await lead_count(lr) == BURST + 1


async def test_refused_bodies_count_and_bad_tokens_do_not(limited: Settings) -> None:
    async with limited_app(limited) as (lr, clock):
        bad = {"Authorization": "Bearer lr_wrong"}
        for _ in range(BURST * 2):
            response = await lr.client.post("/api/leads", json={"name": "A"}, headers=bad)
            assert response.status_code == 401
        for _ in range(BURST):
            assert (await lr.create_lead(name="")).status_code == 422
        assert_limited(await lr.create_lead())
        assert await lead_count(lr) == 0


async def test_reads_are_not_limited(limited: Settings) -> None:
    async with limited_app(limited) as (lr, clock):
        for _ in range(BURST + 1):
            await lr.create_lead()
        for _ in range(BURST * 3):
            response = await lr.client.get("/api/admin/leads", headers=lr.auth())
            assert response.status_code == 200


async def test_no_limit_by_default(settings: Settings) -> None:
    assert settings.rate_limit_per_second == 0
    async with running_app(settings) as lr:
        for _ in range(30):
            assert (await lr.create_lead()).status_code == 201


@pytest.fixture(scope="module")
def limited_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    env = {"LEADRELAY_RATE_LIMIT_PER_SECOND": str(RATE), "LEADRELAY_RATE_LIMIT_BURST": str(BURST)}
    db = tmp_path_factory.mktemp("ratelimit") / "leadrelay.db"
    with Serve(db, relay="off", env=env) as server:
        yield server


def test_serve_sixth_quick_request_is_429(limited_daemon: Serve) -> None:
    """The real daemon on the real clock: back-to-back requests are let through while the
    bucket has tokens (the burst, and what refilled while they ran), then refused, and
    nothing refused is stored."""
    with httpx.Client(base_url=limited_daemon.url, headers=limited_daemon.auth()) as client:
        started = time.monotonic()
        responses = []
        for _ in range(BURST + 20):
            responses.append(client.post("/api/leads", json={"name": "A"}))
            if responses[-1].status_code != 201:
                break
        elapsed = time.monotonic() - started
        created = len(responses) - 1
        assert BURST <= created <= BURST + math.ceil(elapsed * RATE), (created, elapsed)
        assert_limited(responses[-1])
        leads = client.get("/api/admin/leads").json()["leads"]
    assert len(leads) == created
