"""A websocket subscriber on soketi that records every event, as a dashboard would see it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from leadrelay.auth import channel_signature
from leadrelay.pusher.protocol import ws_url
from leadrelay.pusher.socket import PusherSocket
from support.soketi import Soketi


@dataclass
class Received:
    channel: str
    event: str
    data: Any
    at: float


@dataclass
class Subscriber:
    """Subscribes in a thread of its own; `wait_for` blocks until enough events came."""

    soketi: Soketi
    channels: list[str]
    # (socket_id, channel) -> auth string; signs locally with soketi's secret when None
    authorizer: Callable[[str, str], str] | None = None
    received: list[Received] = field(default_factory=list)
    socket_id: str = ""
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    def __enter__(self) -> Subscriber:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"subscriber did not subscribe: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)  # a close handshake with a busy server may take seconds

    async def _run(self) -> None:
        try:
            url = ws_url(self.soketi.key, host=self.soketi.host, port=self.soketi.port, tls=False)
            socket = await PusherSocket.connect(url)
            for channel in self.channels:
                auth = None
                if channel.startswith("private-"):
                    auth = channel_signature(
                        self.soketi.key, self.soketi.secret, socket.socket_id, channel
                    )
                await socket.subscribe(channel, auth=auth)
        except BaseException as exc:
            self._error = exc
            raise
        self.socket_id = socket.socket_id
        self._ready.set()

        async def watch_stop() -> None:
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
            await socket.close()

        stopper = asyncio.create_task(watch_stop())
        try:
            async for message in socket.events():
                if message.channel is not None:
                    self.received.append(
                        Received(message.channel, message.event, message.data, time.time())
                    )
        finally:
            stopper.cancel()

    def on(self, channel: str) -> list[Received]:
        return [r for r in self.received if r.channel == channel]

    def wait_for(
        self, count: int, channel: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.on(channel) if channel else list(self.received)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        got = self.on(channel) if channel else list(self.received)
        raise AssertionError(
            f"expected {count} events on {channel or 'any channel'}, got {len(got)}"
        )


def check_order_per_lead(received: list[dict[str, Any]]) -> tuple[int, int]:
    """Per lead, the first arrival of each event comes in `seq` order 1, 2, 3…  Returns the
    redelivered copies (a client drops them by event_id) and how many of those were stale:
    a copy of an event that arrived after a later event of its lead."""
    seen: set[str] = set()
    seqs: dict[int, list[int]] = {}
    duplicates = stale = 0
    for data in received:
        lead_seqs = seqs.setdefault(data["lead"]["id"], [])
        if data["event_id"] in seen:
            duplicates += 1
            stale += data["seq"] < lead_seqs[-1]
            continue
        seen.add(data["event_id"])
        lead_seqs.append(data["seq"])
    for lead_id, order in seqs.items():
        assert order == list(range(1, len(order) + 1)), f"lead {lead_id} got seq {order}"
    return duplicates, stale


def ours(sub: Subscriber, event_ids: set[str]) -> list[dict[str, Any]]:
    """What the subscriber got of these events on `admin`, in arrival order, copies kept."""
    return [
        r.data
        for r in sub.on("admin")
        if isinstance(r.data, dict) and r.data.get("event_id") in event_ids
    ]
