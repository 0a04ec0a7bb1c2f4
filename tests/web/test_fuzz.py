"""Schemathesis against the app's own OpenAPI document, in-process over ASGI, on both backends.

Both generation modes run: schema-valid requests must be accepted (or refused only for
state a schema cannot express), schema-violating ones must get a 4xx, never a 5xx, and
every response must match the document (status, content type, body, headers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from leadrelay import accounts, leads
from leadrelay.config import Settings
from leadrelay.pusher import config as pusher_config
from leadrelay.store import open_store
from leadrelay.web.app import create_app
from leadrelay.web.openapi import document
from support.app import running_app

pytestmark = pytest.mark.both_backends

MAX_EXAMPLES = 25
# 422s that depend on what is stored, not on the request's shape
STATE_DEPENDENT = {"unknown_provider", "pusher_incomplete"}
STATUSES: Counter[int] = Counter()
CASES: Counter[str] = Counter()


class AppSlot:
    """The ASGI app under test; the fixture sets it once the database is seeded."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


SLOT = AppSlot()
# The document the app serves at /openapi.json (test_fuzz_schema_is_what_the_app_serves
# holds the two equal); building it here lets pytest collect one test per operation.
schema = schemathesis.openapi.from_dict(document(Settings()))
schema.app = SLOT
# unknown query parameters are ignored by design, as unknown fields of a new lead are
schema.config.generation.update(
    modes=["positive", "negative"], max_examples=MAX_EXAMPLES, allow_extra_parameters=False
)
# Its only effect is a network call to whatever Pusher host the PUT fuzzing stored;
# test_hostile_input covers its auth.
schema = schema.exclude(path="/api/admin/settings/pusher/test")


async def _seed(db: Path | str) -> dict[str, str]:
    store = await open_store(db)
    try:
        admin = await accounts.create_admin_token(store)
        assert admin is not None
        provider = await accounts.add_provider(store, "Acme")
        blank = dict.fromkeys(leads.NEW_LEAD_FIELDS)
        for n in range(3):
            fields = {**blank, "name": f"Lead {n}", "provider_id": provider["id"]}
            await leads.create_lead(store, fields, status="new")
        config = {"app_id": "1", "key": "fuzzkey", "secret": "fuzzsecret-1234"}
        await pusher_config.update(store, {**config, "host": "127.0.0.1", "port": 9})
        return {"admin": admin, "provider": provider["token"]}
    finally:
        await store.close()


@pytest.fixture(scope="module")
def tokens(module_db: Path | str) -> Iterator[dict[str, str]]:
    seeded = anyio.run(_seed, module_db)
    # one client that sends bad tokens on purpose: no limit on its failed checks
    SLOT.app = create_app(Settings(db=module_db, relay="off", auth_failures_per_minute=0))
    yield seeded
    SLOT.app = None


@pytest.fixture(scope="module", autouse=True)
def report_counts(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(STATUSES.items()))
    line = f"schemathesis: {sum(CASES.values())} cases, {len(CASES)} operations; {statuses}"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None and CASES:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


def state_aware_positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' check, less what a schema cannot say.

    The 422s that only the stored data decides, and integral floats: JSON Schema's
    "integer" admits 5.0, while leadrelay refuses a float where it wants an id (422).
    """
    if response.status_code == 422 and _error_code(response) in STATE_DEPENDENT:
        return None
    if response.status_code == 422 and _has_float(case.body, case.query, case.path_parameters):
        return None
    if response.status_code == 422 and not _real_instant((case.query or {}).get("since")):
        return None  # "date-time" admits RFC 3339's grammar (April 31, second 60): no instant
    return positive_data_acceptance(ctx, response, case)


def _real_instant(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def auth_aware_negative_data_rejection(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' check, less the negations this test undoes before sending.

    Every call carries a valid Authorization header, so a case whose negation is a missing
    header is a valid request once sent; and an object in a query string serialises to
    plain `name=value` pairs that can be valid again.
    """
    meta = case.meta
    if meta is not None:
        negated = {loc for loc, info in meta.components.items() if info.mode.is_negative}
        header, query = ParameterLocation.HEADER, ParameterLocation.QUERY
        if negated and negated <= {header, query}:
            objects_in_query = any(isinstance(v, dict | list) for v in (case.query or {}).values())
            if header in negated or objects_in_query:
                return None
    return negative_data_rejection(ctx, response, case)


def _has_float(*values: Any) -> bool:
    for value in values:
        if isinstance(value, float):
            return True
        if isinstance(value, dict) and _has_float(*value.values()):
            return True
        if isinstance(value, list) and _has_float(*value):
            return True
    return False


def _error_code(response: Any) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_fuzz_operation_never_fails_and_matches_the_schema(
    case: Any, tokens: dict[str, str]
) -> None:
    who = "provider" if case.path.startswith(("/api/provider", "/broadcasting")) else "admin"
    headers = {"Authorization": f"Bearer {tokens[who]}"}
    response = case.call(headers=headers)
    CASES[case.operation.label] += 1
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message"} and error["message"], response.text
    case.validate_response(
        response,
        headers=headers,
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
        additional_checks=[
            state_aware_positive_data_acceptance,
            auth_aware_negative_data_rejection,
        ],
    )


@pytest.mark.anyio
async def test_fuzz_schema_is_what_the_app_serves(settings: Settings) -> None:
    async with running_app(settings) as lr:
        served = (await lr.client.get("/openapi.json")).json()
    assert served == document(settings)
    assert served["openapi"] == "3.1.0"


@pytest.mark.anyio
async def test_fuzz_head_and_options_of_every_path_are_never_5xx(settings: Settings) -> None:
    """schemathesis sends the documented methods; Starlette also answers HEAD for GET."""
    async with running_app(settings) as lr:
        assert (await lr.create_lead()).status_code == 201
        for path in document(settings)["paths"]:
            url = path.replace("{lead_id}", "1")
            for method in ("HEAD", "OPTIONS"):
                response = await lr.client.request(method, url, headers=lr.auth())
                assert response.status_code < 500, (method, url, response.status_code)
