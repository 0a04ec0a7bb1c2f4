"""The HTTP API of CONTRACT §2, in-process over a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from leadrelay.config import Settings
from support.app import InProcess, running_app
from support.contract import LEAD_KEYS

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def count(lr: InProcess, table: str) -> int:
    row = await lr.store.fetch_one(f"SELECT count(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def events_of(lr: InProcess) -> list[dict[str, Any]]:
    response = await lr.client.get("/api/admin/events", headers=lr.auth())
    assert response.status_code == 200
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def assert_error(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


async def test_create_lead_returns_lead_and_writes_one_event(settings: Settings) -> None:
    async with running_app(settings) as lr:
        provider = await lr.add_provider("Acme")
        response = await lr.create_lead(
            email="ada@example.com", phone="+44 1", provider_id=provider["id"], source="web"
        )
        assert response.status_code == 201
        lead = response.json()
        assert set(lead) == LEAD_KEYS
        assert lead["status"] == "new"
        assert lead["provider_id"] == provider["id"]
        assert lead["created_at"].endswith("Z")
        [event] = await events_of(lr)
        assert event["event"] == "lead.assigned"
        assert event["channels"] == ["admin", f"private-provider.{provider['id']}"]
        assert event["data"]["lead"] == lead
        assert event["data"]["seq"] == 1
        assert uuid.UUID(event["data"]["event_id"])


async def test_create_lead_through_the_router_matches_the_fast_path(settings: Settings) -> None:
    """POST /api/leads skips Starlette's router; the route it keeps must answer the same."""
    import httpx
    from starlette.applications import Starlette

    async with running_app(settings) as lr:
        app = lr.app

        async def through_router(scope: Any, receive: Any, send: Any) -> None:
            await Starlette.__call__(app, scope, receive, send)

        transport = httpx.ASGITransport(app=through_router)
        async with httpx.AsyncClient(transport=transport, base_url="http://lr.test") as client:
            routed = await client.post("/api/leads", json={"name": "Routed"}, headers=lr.auth())
            bad = await client.post("/api/leads", json={"name": ""}, headers=lr.auth())
        fast = await lr.create_lead(name="Fast")
        assert routed.status_code == fast.status_code == 201
        assert set(routed.json()) == set(fast.json()) == LEAD_KEYS
        assert routed.headers["content-type"] == fast.headers["content-type"]
        assert_error(bad, 422, "invalid_field")
        names = [event["data"]["lead"]["name"] for event in await events_of(lr)]
        assert names == ["Routed", "Fast"]


async def test_create_lead_without_provider_goes_to_admin_only(settings: Settings) -> None:
    async with running_app(settings) as lr:
        assert (await lr.create_lead()).status_code == 201
        [event] = await events_of(lr)
        assert event["channels"] == ["admin"]


async def test_create_lead_validation(settings: Settings) -> None:
    async with running_app(settings) as lr:
        assert_error(await lr.create_lead(name=""), 422)
        assert_error(await lr.create_lead(name="x" * 201), 422, "field_too_long")
        assert_error(await lr.create_lead(email="not-an-address"), 422, "invalid_email")
        assert_error(await lr.create_lead(provider_id=999), 422, "unknown_provider")
        big = {"name": "x", "notes": "y" * 70_000}
        response = await lr.client.post("/api/leads", json=big, headers=lr.auth())
        assert_error(response, 413)
        assert await count(lr, "leads") == 0
        assert await count(lr, "events") == 0


async def test_idempotency_key_returns_first_lead_even_when_racing(settings: Settings) -> None:
    async with running_app(settings) as lr:
        headers = {**lr.auth(), "Idempotency-Key": "crm-42"}
        body = {"name": "Grace"}
        responses = await asyncio.gather(
            *(lr.client.post("/api/leads", json=body, headers=headers) for _ in range(50))
        )
        ids = {r.json()["id"] for r in responses}
        assert len(ids) == 1
        assert sorted(r.status_code for r in responses) == [200] * 49 + [201]
        assert await count(lr, "leads") == 1
        assert await count(lr, "events") == 1


async def test_admin_status_change_fires_status_event_once(settings: Settings) -> None:
    async with running_app(settings) as lr:
        provider = await lr.add_provider()
        lead = (await lr.create_lead(provider_id=provider["id"])).json()
        path = f"/api/admin/leads/{lead['id']}"
        changed = await lr.client.patch(path, json={"status": "contacted"}, headers=lr.auth())
        assert changed.status_code == 200
        assert changed.json()["status"] == "contacted"
        same = await lr.client.patch(path, json={"status": "contacted"}, headers=lr.auth())
        assert same.status_code == 200
        events = await events_of(lr)
        assert [e["event"] for e in events] == ["lead.assigned", "lead.status.updated"]
        data = events[1]["data"]
        assert data["old_status"] == "new" and data["new_status"] == "contacted"
        assert data["changed_by"] == {"role": "admin", "provider_id": None}
        assert data["seq"] == 2
        assert events[1]["channels"] == ["admin", f"private-provider.{provider['id']}"]


async def test_provider_status_change_names_the_provider(settings: Settings) -> None:
    async with running_app(settings) as lr:
        provider = await lr.add_provider()
        lead = (await lr.create_lead(provider_id=provider["id"])).json()
        response = await lr.client.patch(
            f"/api/provider/leads/{lead['id']}",
            json={"status": "qualified"},
            headers=lr.auth(provider["token"]),
        )
        assert response.status_code == 200
        event = (await events_of(lr))[-1]
        assert event["data"]["changed_by"] == {"role": "provider", "provider_id": provider["id"]}


async def test_reassignment_fires_lead_assigned_to_the_new_provider(settings: Settings) -> None:
    async with running_app(settings) as lr:
        first, second = await lr.add_provider("A"), await lr.add_provider("B")
        lead = (await lr.create_lead(provider_id=first["id"])).json()
        response = await lr.client.patch(
            f"/api/admin/leads/{lead['id']}",
            json={"provider_id": second["id"], "status": "contacted"},
            headers=lr.auth(),
        )
        assert response.status_code == 200
        events = await events_of(lr)
        assert [(e["event"], e["seq"]) for e in events] == [
            ("lead.assigned", 1),
            ("lead.assigned", 2),
            ("lead.status.updated", 3),
        ]
        assert events[1]["channels"] == ["admin", f"private-provider.{second['id']}"]
        assert events[2]["channels"] == ["admin", f"private-provider.{second['id']}"]


async def test_unknown_status_is_422_and_writes_nothing(settings: Settings) -> None:
    async with running_app(settings) as lr:
        lead = (await lr.create_lead()).json()
        response = await lr.client.patch(
            f"/api/admin/leads/{lead['id']}", json={"status": "won"}, headers=lr.auth()
        )
        assert_error(response, 422, "unknown_status")
        assert await count(lr, "events") == 1


async def test_statuses_are_configurable(settings: Settings) -> None:
    custom = settings.replace(statuses=("open", "won"))
    async with running_app(custom) as lr:
        lead = (await lr.create_lead()).json()
        assert lead["status"] == "open"
        response = await lr.client.patch(
            f"/api/admin/leads/{lead['id']}", json={"status": "won"}, headers=lr.auth()
        )
        assert response.json()["status"] == "won"


async def test_admin_list_filters_and_paginates(settings: Settings) -> None:
    async with running_app(settings) as lr:
        provider = await lr.add_provider()
        for i in range(5):
            await lr.create_lead(name=f"L{i}", provider_id=provider["id"] if i % 2 else None)
        page = (await lr.client.get("/api/admin/leads?limit=2", headers=lr.auth())).json()
        assert [lead["name"] for lead in page["leads"]] == ["L0", "L1"]
        after = page["next_after"]
        rest = await lr.client.get(f"/api/admin/leads?after={after}&limit=10", headers=lr.auth())
        assert [lead["name"] for lead in rest.json()["leads"]] == ["L2", "L3", "L4"]
        assert rest.json()["next_after"] is None
        mine = await lr.client.get(
            f"/api/admin/leads?provider_id={provider['id']}", headers=lr.auth()
        )
        assert [lead["name"] for lead in mine.json()["leads"]] == ["L1", "L3"]
        new = await lr.client.get("/api/admin/leads?status=contacted", headers=lr.auth())
        assert new.json()["leads"] == []
        one = await lr.client.get("/api/admin/leads/1", headers=lr.auth())
        assert one.json()["name"] == "L0"
        assert_error(await lr.client.get("/api/admin/leads/999", headers=lr.auth()), 404)


async def test_events_api_cursor_and_provider_scope(settings: Settings) -> None:
    async with running_app(settings) as lr:
        a, b = await lr.add_provider("A"), await lr.add_provider("B")
        await lr.create_lead(name="for A", provider_id=a["id"])
        await lr.create_lead(name="for B", provider_id=b["id"])
        await lr.create_lead(name="nobody's")
        everything = await events_of(lr)
        assert len(everything) == 3
        first = everything[0]
        after = await lr.client.get(f"/api/admin/events?after={first['id']}", headers=lr.auth())
        assert [e["id"] for e in after.json()["events"]] == [e["id"] for e in everything[1:]]
        by_uuid = await lr.client.get(
            f"/api/admin/events?after={first['event_id']}", headers=lr.auth()
        )
        assert by_uuid.json()["events"] == after.json()["events"]
        mine = await lr.client.get("/api/provider/events", headers=lr.auth(a["token"]))
        [only] = mine.json()["events"]
        assert only["data"]["lead"]["name"] == "for A"
        assert only["channels"] == [f"private-provider.{a['id']}"]


async def test_authz_matrix(settings: Settings) -> None:
    """A provider can neither read nor change another's lead, nor reach admin routes."""
    async with running_app(settings) as lr:
        a, b = await lr.add_provider("A"), await lr.add_provider("B")
        lead = (await lr.create_lead(provider_id=a["id"])).json()
        lead_path = f"/api/provider/leads/{lead['id']}"
        # the owner may
        assert (await lr.client.get(lead_path, headers=lr.auth(a["token"]))).status_code == 200
        # another provider sees a 404, for reads and writes
        other = lr.auth(b["token"])
        assert_error(await lr.client.get(lead_path, headers=other), 404)
        assert_error(await lr.client.patch(lead_path, json={"status": "lost"}, headers=other), 404)
        listing = await lr.client.get("/api/provider/leads", headers=other)
        assert listing.json()["leads"] == []
        # providers cannot change the provider of a lead
        response = await lr.client.patch(
            lead_path, json={"provider_id": b["id"]}, headers=lr.auth(a["token"])
        )
        assert_error(response, 422, "unknown_field")
        admin_routes = [
            ("GET", "/api/admin/leads"),
            ("GET", f"/api/admin/leads/{lead['id']}"),
            ("PATCH", f"/api/admin/leads/{lead['id']}"),
            ("GET", "/api/admin/events"),
            ("GET", "/api/admin/settings/pusher"),
            ("PUT", "/api/admin/settings/pusher"),
            ("POST", "/api/admin/settings/pusher/test"),
            ("POST", "/api/leads"),
        ]
        for method, path in admin_routes:
            body = {"name": "x"} if method != "GET" else None
            response = await lr.client.request(method, path, json=body, headers=other)
            assert_error(response, 403)
            unauthenticated = await lr.client.request(method, path, json=body)
            assert_error(unauthenticated, 401)
            wrong = await lr.client.request(method, path, json=body, headers=lr.auth("lr_nope"))
            assert_error(wrong, 401, "invalid_token")
        # admins cannot use provider routes (there is no "own" lead for an admin)
        assert_error(await lr.client.get("/api/provider/leads", headers=lr.auth()), 403)
        for path in ("/api/provider/leads", lead_path, "/api/provider/events"):
            assert_error(await lr.client.get(path), 401)
        assert await count(lr, "leads") == 1


async def test_broadcasting_auth_signs_only_own_channel(settings: Settings) -> None:
    async with running_app(settings) as lr:
        a, b = await lr.add_provider("A"), await lr.add_provider("B")
        await lr.client.put(
            "/api/admin/settings/pusher",
            json={"app_id": "1", "key": "the-key", "secret": "the-secret-value"},
            headers=lr.auth(),
        )
        form = {"socket_id": "123.456", "channel_name": f"private-provider.{a['id']}"}
        ok = await lr.client.post("/broadcasting/auth", data=form, headers=lr.auth(a["token"]))
        assert ok.status_code == 200
        from leadrelay.auth import channel_signature

        expected = channel_signature("the-key", "the-secret-value", "123.456", form["channel_name"])
        assert ok.json() == {"auth": expected}
        as_json = await lr.client.post("/broadcasting/auth", json=form, headers=lr.auth(a["token"]))
        assert as_json.json() == ok.json()
        other = await lr.client.post("/broadcasting/auth", data=form, headers=lr.auth(b["token"]))
        assert_error(other, 403, "channel_forbidden")
        admin = await lr.client.post("/broadcasting/auth", data=form, headers=lr.auth())
        assert admin.status_code == 200
        assert_error(await lr.client.post("/broadcasting/auth", data=form), 401)
        bad = {**form, "socket_id": "nope"}
        assert_error(
            await lr.client.post("/broadcasting/auth", data=bad, headers=lr.auth(a["token"])), 400
        )


async def test_broadcasting_config_gives_the_public_socket_settings(settings: Settings) -> None:
    async with running_app(settings) as lr:
        provider = await lr.add_provider()
        path = "/api/admin/settings/pusher"
        assert_error(await lr.client.get("/broadcasting/config", headers=lr.auth()), 400)
        secret = "the-secret-value-123"
        body = {
            "app_id": "7",
            "key": "pub-key",
            "secret": secret,
            "host": "ws.example.com",
            "port": 6001,
            "scheme": "http",
        }
        await lr.client.put(path, json=body, headers=lr.auth())
        response = await lr.client.get("/broadcasting/config", headers=lr.auth(provider["token"]))
        assert response.json() == {
            "key": "pub-key",
            "cluster": "mt1",
            "ws_host": "ws.example.com",
            "ws_port": 6001,
            "tls": False,
            "channels": {"admin": "admin", "provider": "private-provider.{id}"},
            "encrypted": False,
            "personal_data": True,
        }
        assert secret not in response.text and "7" not in response.json().values()
        assert_error(await lr.client.get("/broadcasting/config"), 401)


async def test_pusher_settings_masked_and_validated(settings: Settings) -> None:
    async with running_app(settings) as lr:
        secret = "s3cr3t-value-long-enough"
        put = await lr.client.put(
            "/api/admin/settings/pusher",
            json={"app_id": "42", "key": "k", "secret": secret, "cluster": "eu"},
            headers=lr.auth(),
        )
        assert put.status_code == 200
        shown = (await lr.client.get("/api/admin/settings/pusher", headers=lr.auth())).json()
        assert shown["app_id"] == "42" and shown["cluster"] == "eu"
        assert secret not in json.dumps(shown) and shown["secret"].startswith("••••")
        bad = await lr.client.put(
            "/api/admin/settings/pusher", json={"app_id": "abc"}, headers=lr.auth()
        )
        assert_error(bad, 422, "invalid_app_id")
        enable = await lr.client.put(
            "/api/admin/settings/pusher", json={"enabled": True}, headers=lr.auth()
        )
        assert enable.json()["enabled"] is True


async def test_pusher_test_reports_cause_when_unreachable(settings: Settings) -> None:
    async with running_app(settings) as lr:
        await lr.client.put(
            "/api/admin/settings/pusher",
            json={
                "app_id": "1",
                "key": "k",
                "secret": "s",
                "host": "127.0.0.1",
                "port": 9,
                "scheme": "http",
            },
            headers=lr.auth(),
        )
        result = await lr.client.post("/api/admin/settings/pusher/test", headers=lr.auth())
        assert result.status_code == 200
        assert result.json()["ok"] is False and result.json()["kind"] == "refused"


async def test_socket_id_header_is_stored_for_to_others(settings: Settings) -> None:
    async with running_app(settings) as lr:
        headers = {**lr.auth(), "X-Socket-ID": "1234.5678"}
        await lr.client.post("/api/leads", json={"name": "x"}, headers=headers)
        row = await lr.store.fetch_one("SELECT socket_id FROM events")
        assert row == {"socket_id": "1234.5678"}


async def test_operations_routes(settings: Settings) -> None:
    async with running_app(settings) as lr:
        assert (await lr.client.get("/healthz")).json() == {"status": "ok"}
        ready = await lr.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        await lr.create_lead()
        metrics = (await lr.client.get("/metrics")).text
        assert "leadrelay_leads_received_total" in metrics
        assert "leadrelay_outbox_pending 1" in metrics
        spec = (await lr.client.get("/openapi.json")).json()
        routes = {
            (method.upper(), path)
            for path, operations in spec["paths"].items()
            for method in operations
        }
        from leadrelay.web.app import ROUTES

        for route in ROUTES:
            for method in route.methods or ():
                if method != "HEAD":
                    assert (method, route.path) in routes, (method, route.path)
        assert_error(await lr.client.get("/nope"), 404, "not_found")
        assert_error(await lr.client.delete("/api/leads"), 405, "method_not_allowed")
