"""CORS: dashboards on the origins in `cors_origins` may call /broadcasting/* and the
provider and admin APIs from a browser; every other origin gets no Access-Control header."""

from __future__ import annotations

import pytest

from leadrelay.config import Settings, load_settings
from leadrelay.errors import ConfigError
from support.app import running_app

pytestmark = pytest.mark.anyio

DASHBOARD = "https://dash.example.com"
OTHER = "https://evil.example.net"
SCOPED = ["/broadcasting/auth", "/broadcasting/config", "/api/admin/leads", "/api/provider/leads"]


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, x-socket-id",
    }


@pytest.fixture
def cors_settings(settings: Settings) -> Settings:
    return settings.replace(cors_origins=(DASHBOARD,))


@pytest.mark.parametrize("path", SCOPED)
async def test_cors_preflight_answers_an_allowed_origin(cors_settings: Settings, path: str) -> None:
    async with running_app(cors_settings) as lr:
        response = await lr.client.options(path, headers=preflight(DASHBOARD))
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == DASHBOARD
        allowed = {
            h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
        }
        assert {"authorization", "content-type", "x-socket-id"} <= allowed
        assert "POST" in response.headers["access-control-allow-methods"]
        # bearer tokens, no cookies: a browser must not send credentials
        assert "access-control-allow-credentials" not in response.headers
        assert "Origin" in response.headers["vary"]


@pytest.mark.parametrize("path", SCOPED)
async def test_cors_preflight_refuses_another_origin(cors_settings: Settings, path: str) -> None:
    async with running_app(cors_settings) as lr:
        response = await lr.client.options(path, headers=preflight(OTHER))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "cors_origin_refused"
        assert "access-control-allow-origin" not in response.headers


async def test_cors_actual_responses_carry_the_origin_only_when_allowed(
    cors_settings: Settings,
) -> None:
    async with running_app(cors_settings) as lr:
        provider = await lr.add_provider("Acme", 7)
        mine = {"Origin": DASHBOARD, **lr.auth(provider["token"])}
        response = await lr.client.get("/api/provider/leads", headers=mine)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == DASHBOARD
        assert "access-control-allow-credentials" not in response.headers
        # an error answer too, or the page could not read why it was refused
        response = await lr.client.post(
            "/broadcasting/auth",
            data={"socket_id": "1.2", "channel_name": "private-provider.8"},
            headers=mine,
        )
        assert response.status_code == 403
        assert response.headers["access-control-allow-origin"] == DASHBOARD

        theirs = {"Origin": OTHER, **lr.auth(provider["token"])}
        response = await lr.client.get("/api/provider/leads", headers=theirs)
        assert response.status_code == 200  # CORS is the browser's check, not auth
        assert "access-control-allow-origin" not in response.headers
        assert "Origin" in response.headers["vary"]


async def test_cors_leaves_intake_and_operations_alone(cors_settings: Settings) -> None:
    async with running_app(cors_settings) as lr:
        # the intake is a CRM's server-to-server path: no browser is answered there
        response = await lr.client.options("/api/leads", headers=preflight(DASHBOARD))
        assert response.status_code == 405
        assert "access-control-allow-origin" not in response.headers
        response = await lr.client.post(
            "/api/leads", json={"name": "Ada"}, headers={"Origin": DASHBOARD, **lr.auth()}
        )
        assert response.status_code == 201
        assert "access-control-allow-origin" not in response.headers
        response = await lr.client.get("/healthz", headers={"Origin": DASHBOARD})
        assert "access-control-allow-origin" not in response.headers


async def test_cors_off_by_default(settings: Settings) -> None:
    assert settings.cors_origins == ()
    async with running_app(settings) as lr:
        response = await lr.client.options("/broadcasting/auth", headers=preflight(DASHBOARD))
        assert response.status_code == 405
        assert "access-control-allow-origin" not in response.headers
        response = await lr.client.get(
            "/broadcasting/config", headers={"Origin": DASHBOARD, **lr.auth()}
        )
        assert "access-control-allow-origin" not in response.headers


def test_cors_origins_setting_is_checked() -> None:
    env = {"LEADRELAY_CORS_ORIGINS": "https://a.example.com/, http://127.0.0.1:5173"}
    assert load_settings(env=env).cors_origins == ("https://a.example.com", "http://127.0.0.1:5173")
    for bad in ("*", "dash.example.com", "https://a.example.com/path"):
        with pytest.raises(ConfigError, match="cors_origins"):
            load_settings(env={"LEADRELAY_CORS_ORIGINS": bad})
