"""Properties of the write routes over arbitrary input (Hypothesis), on both backends.

Whatever the body, POST /api/leads and PATCH of a lead never answer 5xx, and either do
all of their write (one lead and one event; the change and exactly its events) or none
of it, answering 4xx with the contract's error body (or 200 with the lead a known
`external_id` already names, writing nothing).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrelay.config import DEFAULT_STATUSES, Settings
from leadrelay.leads import NEW_LEAD_FIELDS
from support.app import InProcess, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

EXAMPLES = 200
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # one app serves every example of a test; each example compares before and after
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# statuses seen per test and backend, reported in docs/faults.md
SEEN: dict[tuple[str, str], Counter[int]] = {}

# --- strategies ----------------------------------------------------------------------------

FIELD_NAMES = [*NEW_LEAD_FIELDS, "provider_id", "status"]
# every code point, lone surrogates included (json.dumps sends them as \ud800 escapes)
any_char = st.characters(codec=None, exclude_categories=())
texts = st.one_of(
    st.text(any_char, max_size=20),
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "a\x00b", "Ada", "a@b.co", "a@b.co\n", *DEFAULT_STATUSES]),
    st.integers(190, 210).map(lambda n: "x" * n),
    st.integers(5000, 5002).map(lambda n: "n" * n),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, 3, 2**63 - 1, 2**63]),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(any_char, max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=12,
)
field_values = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(keys, scalars))
# objects shaped like a lead: most fields right, some wrong, some unknown
lead_like = st.fixed_dictionaries(
    {"name": st.one_of(st.text(min_size=1, max_size=40), field_values)},
    optional={name: field_values for name in FIELD_NAMES if name != "name"}
    | {"crm_score": json_values},
)
# ...and leads and changes that are right, so that acceptance is exercised as much
valid_lead = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=50)},
    optional={
        "email": st.none() | st.emails(),
        "phone": st.none() | st.text(max_size=50),
        "provider_id": st.sampled_from([None, 1, 2, 3]),
        "source": st.none() | st.text(max_size=20),
        "notes": st.none() | st.text(),
        "crm_score": json_values,
    },
)
change_like = st.dictionaries(
    st.sampled_from(["status", "provider_id", "status", "provider_id", "name"]),
    st.one_of(st.sampled_from([*DEFAULT_STATUSES, 1, 2, None]), scalars),
    max_size=3,
)
valid_change = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(DEFAULT_STATUSES),
        "provider_id": st.sampled_from([None, 1, 2, 3]),
    },
)
create_bodies = st.one_of(valid_lead, lead_like, json_values)
change_bodies = st.one_of(valid_change, change_like, json_values)
status_bodies = st.one_of(
    st.fixed_dictionaries({"status": st.sampled_from(DEFAULT_STATUSES)}), change_like, json_values
)


@st.composite
def mangled(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> bytes:
    """A JSON body with bytes flipped, cut or inserted: mostly not JSON any more."""
    data = bytearray(json.dumps(draw(bodies)).encode())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


raw_bodies = st.one_of(st.binary(max_size=300), mangled(valid_lead), mangled(valid_change))

# --- the world -----------------------------------------------------------------------------


class World:
    def __init__(self, lr: InProcess, provider_token: str) -> None:
        self.lr = lr
        self.provider_token = provider_token

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {**self.lr.auth(token), "Content-Type": "application/json"}

    async def count(self, table: str) -> int:
        row = await self.lr.store.fetch_one(f"SELECT count(*) AS n FROM {table}")
        assert row is not None
        return int(row["n"])

    async def lead(self, lead_id: int) -> dict[str, Any]:
        """The stored row, less what the search indexer moves meanwhile (support/app.py)."""
        row = await self.lr.stored_lead(lead_id)
        assert row is not None
        return row


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    async with running_app(settings) as lr:
        first = await lr.add_provider("Acme")  # provider 1 owns lead 1
        await lr.add_provider("Globex")  # provider 2 exists, owns nothing
        assert (await lr.create_lead(provider_id=first["id"])).status_code == 201
        yield World(lr, first["token"])


def assert_error_body(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] and body["error"]["message"]


def seen(world: World, test: str, response: httpx.Response) -> None:
    SEEN.setdefault((test, world.lr.store.backend), Counter())[response.status_code] += 1


# --- POST /api/leads ------------------------------------------------------------------------


async def _create_writes_one_lead_or_nothing(world: World, body: bytes, test: str) -> None:
    leads, events = await world.count("leads"), await world.count("events")
    response = await world.lr.client.post("/api/leads", content=body, headers=world.headers())
    seen(world, test, response)
    assert response.status_code < 500, response.text
    if response.status_code == 201:
        lead = response.json()
        assert (await world.count("leads"), await world.count("events")) == (leads + 1, events + 1)
        stored = await world.lead(lead["id"])
        assert {k: stored[k] for k in lead} == lead
        assert lead["status"] == "new"
        sent = json.loads(body)
        for name in ("name", "email", "phone", "source", "provider_id"):
            assert lead[name] == sent.get(name)
    elif response.status_code == 200:  # an external_id an earlier example stored
        lead = response.json()
        assert (await world.count("leads"), await world.count("events")) == (leads, events)
        stored = await world.lead(lead["id"])
        assert stored["external_id"] == json.loads(body)["external_id"] is not None
    else:
        assert_error_body(response)
        assert (await world.count("leads"), await world.count("events")) == (leads, events)


@PROPERTY_SETTINGS
@given(body=create_bodies)
async def test_create_any_json_body_writes_one_lead_and_event_or_nothing(
    world: World, body: Any
) -> None:
    await _create_writes_one_lead_or_nothing(world, json.dumps(body).encode(), "create json")


@PROPERTY_SETTINGS
@given(body=raw_bodies)
async def test_create_any_bytes_writes_one_lead_and_event_or_nothing(
    world: World, body: bytes
) -> None:
    await _create_writes_one_lead_or_nothing(world, body, "create bytes")


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(name=st.text(min_size=1, max_size=200).filter(lambda s: s.strip() and "\x00" not in s))
async def test_create_any_plain_name_is_accepted(world: World, name: str) -> None:
    response = await world.lr.create_lead(name=name)
    seen(world, "create plain name", response)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name


# --- PATCH -----------------------------------------------------------------------------------


async def _patch_is_all_or_nothing(
    world: World, path: str, body: bytes, token: str | None, test: str
) -> None:
    before, events = await world.lead(1), await world.count("events")
    response = await world.lr.client.patch(path, content=body, headers=world.headers(token))
    seen(world, test, response)
    assert response.status_code < 500, response.text
    after = await world.lead(1)
    if response.status_code == 200:
        sent = json.loads(body)
        expected = {**before, **{k: v for k, v in sent.items() if k in ("status", "provider_id")}}
        changed = [k for k in ("provider_id", "status") if expected[k] != before[k]]
        assert {k: after[k] for k in ("status", "provider_id")} == {
            k: expected[k] for k in ("status", "provider_id")
        }
        assert await world.count("events") == events + len(changed)
        assert after["last_seq"] == before["last_seq"] + len(changed)
        assert response.json() == {k: after[k] for k in response.json()}
    else:
        assert_error_body(response)
        assert after == before
        assert await world.count("events") == events


@PROPERTY_SETTINGS
@given(body=change_bodies)
async def test_admin_patch_any_json_body_is_all_or_nothing(world: World, body: Any) -> None:
    raw = json.dumps(body).encode()
    await _patch_is_all_or_nothing(world, "/api/admin/leads/1", raw, None, "admin patch json")


@PROPERTY_SETTINGS
@given(body=status_bodies)
async def test_provider_patch_any_json_body_is_all_or_nothing(world: World, body: Any) -> None:
    raw = json.dumps(body).encode()
    # a provider may change only the status: any other key is a 422
    token = world.provider_token
    await _patch_is_all_or_nothing(world, "/api/provider/leads/1", raw, token, "provider patch")


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(body=raw_bodies)
async def test_admin_patch_any_bytes_is_all_or_nothing(world: World, body: bytes) -> None:
    before, events = await world.lead(1), await world.count("events")
    response = await world.lr.client.patch(
        "/api/admin/leads/1", content=body, headers=world.headers()
    )
    seen(world, "admin patch bytes", response)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert_error_body(response)
        assert (await world.lead(1), await world.count("events")) == (before, events)


def test_properties_saw_both_outcomes() -> None:
    """Runs after the properties above (file order): each exercised success and refusal."""
    if not SEEN:
        pytest.skip("run with the property tests")
    for (test, backend), statuses in SEEN.items():
        refusals = sum(n for status, n in statuses.items() if status >= 400)
        if test in ("create json", "admin patch json", "provider patch"):
            assert statuses[200] + statuses[201] > 0 and refusals > 0, (test, backend, statuses)
    print({f"{test} ({backend})": dict(statuses) for (test, backend), statuses in SEEN.items()})
