"""Where `tail` connects and reads: the database's own Pusher settings, or a daemon's."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from leadrelay.auth import shared_secret
from leadrelay.cli.tail.history import (
    ApiHistory,
    ChannelHistory,
    DaemonError,
    History,
    StoreHistory,
    TailError,
    request,
)
from leadrelay.cli.tail.options import PusherTarget, TailOptions, parse_pusher_url
from leadrelay.cli.tail.output import Output
from leadrelay.events import ENCRYPTED_PREFIX, Broadcast
from leadrelay.pusher.protocol import private_channel_auth, ws_url

if TYPE_CHECKING:
    import httpx

    from leadrelay.store.base import Store

Auth = Callable[[str, str], Awaitable[str]]  # (socket_id, channel) → Pusher `auth`


@dataclass(frozen=True)
class Plan:
    target: PusherTarget
    auth: Auth
    history: History
    channels: list[str]
    # an encrypted channel's secretbox key, filled in as `auth` authorises the channel
    secrets: dict[str, bytes] = field(default_factory=dict)


async def local_plan(options: TailOptions, store: Store, output: Output, mode: Broadcast) -> Plan:
    """The database: its Pusher settings, signing with its secret (and opening encrypted
    channels with its master key), reading its events; channels as `mode` names them."""
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

    secrets: dict[str, bytes] = {}

    async def sign(socket_id: str, channel: str) -> str:
        if channel.startswith(ENCRYPTED_PREFIX):
            if config.master_key is None:
                raise TailError(
                    "encrypted_channels is on but no encryption master key is stored: "
                    "set it with 'leadrelay pusher set --encryption-master-key -'"
                )
            secrets[channel] = shared_secret(channel, config.master_key)
        return private_channel_auth(target.key, config.secret, socket_id, channel)

    channels = options.channels_in(mode)
    if options.app_channels:
        return Plan(target, sign, ChannelHistory(store, channels), channels, secrets)
    one = options.providers[0] if len(set(options.providers)) == 1 else None
    history = StoreHistory(store, one, mode)
    return Plan(target, sign, history, channels, secrets)


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
    # the socket's public settings and the daemon's channels, readable with any token
    found = await request(client, "GET", "/broadcasting/config")
    if options.pusher_url:
        target = parse_pusher_url(options.pusher_url)
    else:
        key = str(found["key"])
        url = ws_url(key, host=found["ws_host"], port=int(found["ws_port"]), tls=found["tls"])
        target = PusherTarget(url, key)
    named = found.get("channels")
    if isinstance(named, dict):
        admin_feed, provider = str(named.get("admin")), str(named.get("provider"))
        channels = (
            [admin_feed]
            if not options.providers
            else [provider.replace("{id}", str(p)) for p in dict.fromkeys(options.providers)]
        )
    else:  # a daemon from before the broadcast modes: the seed's channels
        channels = options.channels
    secrets: dict[str, bytes] = {}

    async def daemon_auth(socket_id: str, channel: str) -> str:
        data = {"socket_id": socket_id, "channel_name": channel}
        answer = await request(client, "POST", "/broadcasting/auth", data=data)
        if isinstance(answer.get("shared_secret"), str):
            secrets[channel] = base64.b64decode(answer["shared_secret"])
        return str(answer["auth"])

    return Plan(target, daemon_auth, history, channels, secrets)
