"""Where `tail` connects and reads: the database's own Pusher settings, or a daemon's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leadrelay.cli.tail.history import (
    ApiHistory,
    DaemonError,
    History,
    StoreHistory,
    TailError,
    request,
)
from leadrelay.cli.tail.options import PusherTarget, TailOptions, parse_pusher_url
from leadrelay.cli.tail.output import Output
from leadrelay.pusher.protocol import private_channel_auth, ws_url

if TYPE_CHECKING:
    import httpx

    from leadrelay.store.sqlite import Store

Auth = Callable[[str, str], Awaitable[str]]  # (socket_id, channel) → Pusher `auth`


@dataclass(frozen=True)
class Plan:
    target: PusherTarget
    auth: Auth
    history: History


async def local_plan(options: TailOptions, store: Store, output: Output) -> Plan:
    """The database: its Pusher settings, signing with its secret, reading its events."""
    from leadrelay.pusher import config as pusher_config

    config = await pusher_config.load(store)
    if not config.complete:
        raise TailError("Pusher is not configured: set it with 'leadrelay pusher set'")
    if not config.enabled:
        output.note("relaying is off ('leadrelay pusher enable'): nothing will arrive", "warn")
    target = PusherTarget(
        ws_url(config.key, host=config.ws_host, port=config.server_port, tls=config.tls),
        config.key,
    )
    if options.pusher_url:
        target = parse_pusher_url(options.pusher_url)

    async def sign(socket_id: str, channel: str) -> str:
        return private_channel_auth(target.key, config.secret, socket_id, channel)

    one = options.providers[0] if len(set(options.providers)) == 1 else None
    return Plan(target, sign, StoreHistory(store, one))


async def remote_plan(options: TailOptions, client: httpx.AsyncClient) -> Plan:
    """A daemon: its /broadcasting/auth and events API, with the caller's token."""
    try:
        await request(client, "GET", "/api/admin/events", params={"limit": "1"})
        admin = True
    except DaemonError as exc:
        if exc.status != 403:
            raise
        admin = False
    if not admin and not options.providers:
        raise TailError("this is a provider's token: pass --provider with your provider id")
    history = ApiHistory(client, "/api/admin/events" if admin else "/api/provider/events")
    if options.pusher_url:
        target = parse_pusher_url(options.pusher_url)
    else:  # the socket's public settings, readable with any token
        found = await request(client, "GET", "/broadcasting/config")
        key = str(found["key"])
        url = ws_url(key, host=found["ws_host"], port=int(found["ws_port"]), tls=found["tls"])
        target = PusherTarget(url, key)

    async def daemon_auth(socket_id: str, channel: str) -> str:
        data = {"socket_id": socket_id, "channel_name": channel}
        return str((await request(client, "POST", "/broadcasting/auth", data=data))["auth"])

    return Plan(target, daemon_auth, history)
