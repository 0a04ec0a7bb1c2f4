"""Every raw frame soketi sends one subscriber, as it leaves the server: what a party that
holds the app key (and even the app secret) but not the encryption master key can read."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field

import websockets

from leadrelay.auth import channel_signature
from leadrelay.pusher.protocol import ws_url
from support.soketi import Soketi


@dataclass
class Wire:
    soketi: Soketi
    channels: list[str]
    frames: list[str] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    def __enter__(self) -> Wire:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the wire recorder did not subscribe: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def events(self) -> list[dict[str, object]]:
        """The application frames (not pusher: or pusher_internal: ones), decoded once."""
        decoded = [json.loads(frame) for frame in list(self.frames)]
        return [f for f in decoded if not str(f.get("event", "")).startswith("pusher")]

    async def _run(self) -> None:
        url = ws_url(self.soketi.key, host=self.soketi.host, port=self.soketi.port, tls=False)
        try:
            async with websockets.connect(url) as ws:
                established = json.loads(await ws.recv())
                socket_id = json.loads(established["data"])["socket_id"]
                pending = set(self.channels)
                for channel in self.channels:
                    data = {"channel": channel}
                    if channel.startswith("private-"):
                        data["auth"] = channel_signature(
                            self.soketi.key, self.soketi.secret, socket_id, channel
                        )
                    await ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
                while not self._stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.1)
                    except TimeoutError:
                        continue
                    text = raw if isinstance(raw, str) else raw.decode()
                    self.frames.append(text)
                    frame = json.loads(text)
                    if frame.get("event") == "pusher_internal:subscription_succeeded":
                        pending.discard(frame.get("channel"))
                        if not pending:
                            self._ready.set()
        except BaseException as exc:  # surfaced by __enter__
            self._error = exc
            self._ready.set()
