"""Pusher's HTTP API on the daemon (setting `pusher_api`), in-process: requests signed by the
real `pusher` package, refusals in Pusher's statuses and words, nothing stored by any of
them, reads passed through to a real soketi.  tests/js/test_pusher_sdks.py drives the same
routes with the SDKs themselves against `leadrelay serve`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pusher.http
import pytest
from pusher.pusher_client import PusherClient

from leadrelay.config import Settings
from leadrelay.pusher import config as pusher_config
from support.app import InProcess, running_app
from support.soketi import Soketi, free_port
from support.subscriber import Subscriber

pytestmark = pytest.mark.anyio
APP = {"app_id": "4321", "key": "the-key", "secret": "the-secret-0123456789"}


def sdk(
    app_id: str = APP["app_id"], key: str = APP["key"], secret: str = APP["secret"]
) -> PusherClient:
    return PusherClient(app_id, key, secret, host="leadrelay.test", port=80, ssl=False)


async def send(lr: InProcess, request: pusher.http.Request, **headers: str) -> httpx.Response:
    """Send a request the package signed, as its own backends would."""
    return await lr.client.request(
        request.method,
        request.signed_path,
        content=request.body or None,
        headers={**request.headers, **headers},
    )


def trigger(client: PusherClient | None = None, **body: Any) -> pusher.http.Request:
    client = client or sdk()
    params = {"name": "e", "channels": ["c"], "data": "{}", **body}
    return pusher.http.Request(client, "POST", f"/apps/{client.app_id}/events", params)


def batch(items: list[dict[str, Any]]) -> pusher.http.Request:
    client = sdk()
    return pusher.http.Request(
        client, "POST", f"/apps/{client.app_id}/batch_events", {"batch": items}
    )


async def stored_events(lr: InProcess) -> int:
    row = await lr.store.fetch_one("SELECT count(*) AS n FROM events")
    assert row is not None
    return int(row["n"])


def assert_refused(response: httpx.Response, status: int, words: str) -> None:
    """A refusal as Pusher words it: the status, and the reason as plain text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert words in response.text, response.text


def assert_contract_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


@pytest.fixture
async def lr(settings: Settings) -> AsyncIterator[InProcess]:
    async with running_app(settings.replace(pusher_api=True)) as app:
        await pusher_config.update(app.store, {**APP, "host": "127.0.0.1", "port": free_port()})
        yield app


async def test_pusher_api_is_off_unless_asked_for(settings: Settings) -> None:
    async with running_app(settings) as off:
        await pusher_config.update(off.store, APP)
        assert_contract_error(await send(off, trigger()), 404, "not_found")


async def test_pusher_api_routes_are_in_the_openapi_document(lr: InProcess) -> None:
    from leadrelay.web.pusher_api import ROUTES

    spec = (await lr.client.get("/openapi.json")).json()
    for route in ROUTES:
        for method in route.methods or ():
            if method != "HEAD":
                operation = spec["paths"][route.path][method.lower()]
                assert "security" not in operation  # signed as Pusher signs, no bearer


async def test_pusher_api_stores_one_event_a_channel_before_answering(lr: InProcess) -> None:
    first = trigger(channels=["c", "d", "c"], data='{"n":1}', socket_id="1.2", info="user_count")
    response = await send(lr, first)
    assert response.status_code == 200, response.text
    assert response.json() == {}  # `info` asked for, and not answered: see docs/pusher-api.md
    items = [{"channel": "d", "name": "f", "data": "as sent é"}, {"channel": "c", "name": "g"}]
    items[1]["data"] = "x"
    assert (await send(lr, batch(items))).status_code == 200
    rows = await lr.store.fetch_all(
        "SELECT e.type, e.channels, e.payload, e.socket_id, e.lead_id, e.provider_id, e.seq, "
        "c.name FROM events e JOIN pusher_channels c ON c.id = e.channel_id ORDER BY e.id"
    )
    got = [(r["name"], r["seq"], r["type"], r["payload"], r["socket_id"]) for r in rows]
    assert got == [
        ("c", 1, "e", '{"n":1}', "1.2"),
        ("d", 1, "e", '{"n":1}', "1.2"),
        ("d", 2, "f", "as sent é", None),
        ("c", 2, "g", "x", None),
    ]
    assert all(r["lead_id"] is None and r["provider_id"] is None for r in rows)
    assert [json.loads(r["channels"]) for r in rows] == [["c"], ["d"], ["d"], ["c"]]
    # the lead events API is the lead contract's feed: these have no lead, and stay out
    assert await lr.store.events_after(0, provider_id=None, lead_id=None, limit=10) == []


async def test_pusher_api_refuses_as_pusher_does(lr: InProcess) -> None:
    cases: list[tuple[pusher.http.Request, int, str]] = [
        (trigger(sdk(app_id="999")), 404, "Unknown app"),
        (trigger(sdk(secret="not-the-secret")), 401, "Invalid signature"),
        (trigger(sdk(key="not-the-key")), 401, "Unknown auth_key"),
        (trigger(name=7), 400, "Expected name parameter to be a string"),
        (trigger(channels=[f"c{n}" for n in range(101)]), 400, "at most 100 channels"),
        (trigger(channels=["c" * 165]), 400, "Invalid channel name"),
        (trigger(channels=["bad channel"]), 400, "Invalid channel name"),
        (trigger(data="x" * 10241), 413, "exceeds the allowed maximum (10240 bytes)"),
        (batch([{"channel": "c", "name": "e", "data": "x"}] * 11), 400, "got 11"),
        (batch([{"channel": "c:d", "name": "e", "data": "x"}]), 400, "Invalid channel name"),
        (batch([{"channel": "c", "name": "e", "data": "é" * 5121}]), 413, "10240 bytes"),
    ]
    for request, status, words in cases:
        assert_refused(await send(lr, request), status, words)
    assert await stored_events(lr) == 0


async def test_pusher_api_refuses_a_stale_timestamp(
    lr: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from types import SimpleNamespace

    monkeypatch.setattr(pusher.http, "time", SimpleNamespace(time=lambda: time.time() - 3600))
    assert_refused(await send(lr, trigger()), 401, "Timestamp expired")
    assert await stored_events(lr) == 0


async def test_pusher_api_refuses_bodies_that_are_not_what_was_signed(lr: InProcess) -> None:
    request = trigger()
    tampered = await lr.client.post(request.signed_path, content=request.body + b" ")
    assert_refused(tampered, 401, "Invalid body_md5")
    # not JSON, but signed: a 400 (the body is checked once the signature holds)
    request = trigger()
    request.body = b"{not json"
    request.query_params.pop("auth_signature")
    request._generate_auth()
    assert_refused(await send(lr, request), 400, "Invalid JSON")
    # no signature at all
    unsigned = await lr.client.post("/apps/4321/events", content=b"{}")
    assert_refused(unsigned, 401, "Missing authentication parameters")
    # over the request limit: refused before it is read whole
    huge = await lr.client.post("/apps/4321/events?auth_key=k", content=b"x" * ((1 << 20) + 1))
    assert_refused(huge, 413, "Request body over")
    assert await stored_events(lr) == 0


async def test_pusher_api_refuses_what_a_leadrelay_relayed(lr: InProcess) -> None:
    # stored settings that point a leadrelay at a leadrelay: answered at once, not chased
    for request in (trigger(), pusher.http.Request(sdk(), "GET", "/apps/4321/channels", {})):
        response = await send(lr, request, Via="1.1 leadrelay")
        assert_contract_error(response, 508, "pusher_loop")
    assert await stored_events(lr) == 0


async def test_pusher_api_reads_are_verified_like_the_triggers(lr: InProcess) -> None:
    read = pusher.http.Request(sdk(secret="nope-nope"), "GET", "/apps/4321/channels", {})
    assert_refused(await send(lr, read), 401, "Invalid signature")
    other = pusher.http.Request(sdk(app_id="5"), "GET", "/apps/5/channels", {})
    assert_refused(await send(lr, other), 404, "Unknown app")
    bad_name = pusher.http.Request(sdk(), "GET", "/apps/4321/channels/a:b", {})
    assert_refused(await send(lr, bad_name), 400, "Invalid channel name")
    # a parameter that could not go on as it was signed
    odd = pusher.http.Request(sdk(), "GET", "/apps/4321/channels", {"info": "a b"})
    assert_refused(await send(lr, odd), 400, "Invalid query parameter")


async def test_pusher_api_read_while_the_upstream_is_down_is_a_503(lr: InProcess) -> None:
    # the stored upstream is a port nothing listens on
    read = pusher.http.Request(sdk(), "GET", "/apps/4321/channels", {})
    response = await send(lr, read)
    assert_contract_error(response, 503, "pusher_unreachable")
    assert "refused the connection" in response.json()["error"]["message"]
    assert APP["secret"] not in response.text


@pytest.mark.soketi
async def test_pusher_api_reads_pass_through_to_the_upstream(
    settings: Settings, soketi: Soketi
) -> None:
    app = {"app_id": soketi.app_id, "key": soketi.key, "secret": soketi.secret}
    client = PusherClient(**app, host="leadrelay.test", port=80, ssl=False)
    path = f"/apps/{soketi.app_id}/channels"
    async with running_app(settings.replace(pusher_api=True)) as lr:
        upstream = {"host": soketi.host, "port": soketi.port, "scheme": "http"}
        await pusher_config.update(lr.store, {**app, **upstream})
        with Subscriber(soketi, ["pass-through-probe"]):
            channels = await send(lr, pusher.http.Request(client, "GET", path, {}))
            assert channels.status_code == 200, channels.text
            assert "pass-through-probe" in channels.json()["channels"]
            one = pusher.http.Request(
                client, "GET", f"{path}/pass-through-probe", {"info": "subscription_count"}
            )
            answer = await send(lr, one)
            assert answer.status_code == 200, answer.text
            assert answer.json()["occupied"] is True
            assert answer.json()["subscription_count"] == 1
        # the upstream's own refusal comes back as it is: users of a non-presence channel
        users = pusher.http.Request(client, "GET", f"{path}/pass-through-probe/users", {})
        refused = await send(lr, users)
        assert refused.status_code == 400, refused.text
        # soketi answers a wrong secret with HTTP 200 and the status in the body: it must
        # not come back as a 200
        await pusher_config.update(lr.store, {"secret": "stored-but-wrong-0123"})
        wrong = PusherClient(
            soketi.app_id, soketi.key, "stored-but-wrong-0123", host="h", port=80, ssl=False
        )
        answer = await send(lr, pusher.http.Request(wrong, "GET", path, {}))
        assert answer.status_code == 401, answer.text
        assert json.loads(answer.text)["code"] == 401
