"""`leadrelay tail`: follow events live over Pusher, with stored history before and across gaps.

    options → history source (the database, or a daemon's events API)
            → start cursor (`--since`, else now)
            → connect, subscribe, catch up from the cursor, follow live
            → on a drop: back off as the close code asks, resubscribe, catch up again

Every event is shown once: `event_id`s are remembered, so the same event read from history
and pushed live prints only the first time.  A live event whose `seq` skips one makes tail
fetch the missing ones from history and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from leadrelay.cli.tail.history import (
    Cursor,
    DaemonUnavailable,
    History,
    TailError,
)
from leadrelay.cli.tail.options import (
    Filters,
    PusherTarget,
    Since,
    TailOptions,
    lead_id_of,
)
from leadrelay.cli.tail.output import Origin, Output, Shown, make_output
from leadrelay.cli.tail.plan import Auth, Plan, local_plan, remote_plan
from leadrelay.errors import LeadrelayError, PusherError
from leadrelay.events import ENCRYPTED_PREFIX, Broadcast
from leadrelay.pusher.protocol import (
    DEFAULT_PONG_TIMEOUT,
    ConnectError,
    ConnectionClosed,
    ConnectRefused,
    ConnectTimeout,
    DecryptError,
    HandshakeRejected,
    HostNotFound,
    PusherMessage,
    Reconnect,
    SubscriptionError,
    TLSError,
    decrypt_data,
)
from leadrelay.pusher.socket import PusherSocket

if TYPE_CHECKING:
    from leadrelay.config import Settings

__all__ = ["TailError", "run_tail"]

PAGE: Final = 500
REMEMBERED: Final = 100_000  # event_ids (and leads) kept for dedupe and seq checks
MAX_BACKOFF: Final = 15.0
STABLE: Final = 10.0  # seconds a connection must hold before backoff starts over


class Remembered:
    """A bounded set: the newest `size` keys."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str) -> bool:
        """Remember `key`; False when it was already there."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


def backoff(attempt: int) -> float:
    # Jitter keeps many tails from reconnecting in step after a server restart.
    return min(MAX_BACKOFF, 0.5 * 2.0**attempt) * random.uniform(0.8, 1.2)


class Tail:
    """One tail: the connect/subscribe/catch-up/follow loop and what it has seen."""

    def __init__(
        self,
        *,
        target: PusherTarget,
        channels: list[str],
        auth: Auth,
        history: History,
        output: Output,
        filters: Filters,
        activity_timeout: float | None = None,
        secrets: dict[str, bytes] | None = None,
    ) -> None:
        self.secrets = secrets if secrets is not None else {}
        self.target = target
        self.channels = channels
        self.auth = auth
        self.history = history
        self.output = output
        self.filters = filters
        self.activity_timeout = activity_timeout
        self.cursor: Cursor = 0
        self.seen = Remembered()
        self.leads: OrderedDict[int, tuple[int, str]] = OrderedDict()  # lead → (seq, event_id)
        self.following = False  # subscribed and caught up once: from now on, retry failures

    async def run(self, start: Cursor, since: Since | None) -> None:
        """Follow until cancelled; raise only for what retrying cannot fix."""
        self.cursor = start
        attempt = 0
        subscribed_at: float | None = None
        where = urlsplit(self.target.url)
        self.output.note(f"connecting to {where.scheme}://{where.netloc}")
        while True:
            try:
                async with self._connected() as sock:
                    await self._subscribe(sock)
                    subscribed_at = time.monotonic()
                    await self._catch_up(since)
                    async for message in sock.events():
                        await self._on_live(message)
                    raise ConnectionClosed(None, "the event stream ended")
            except ConnectionClosed as exc:
                if not self.following or exc.reconnect is Reconnect.NEVER:
                    raise pusher_error(exc, self.target) from exc
                # Only a connection that held for a while earns a fresh start: one that a
                # server drops at once would otherwise be reopened at once, forever.
                if subscribed_at is not None and time.monotonic() - subscribed_at > STABLE:
                    attempt = 0
                subscribed_at = None
                now = exc.reconnect is Reconnect.NOW and attempt == 0
                delay = 0.0 if now else max(exc.min_reconnect_delay, backoff(attempt))
                reason = exc.reason.rstrip(".") or "no reason given"
                code = f"{exc.code}: " if exc.code is not None else ""
                problem = f"disconnected ({code}{reason})"
            except (ConnectError, DaemonUnavailable) as exc:
                if not self.following:
                    raise pusher_error(exc, self.target) from exc
                delay, problem = backoff(attempt), f"cannot reconnect: {exc}"
            attempt += 1
            when = "now" if delay == 0 else f"in {delay:.1f} s"
            self.output.note(f"{problem} — reconnecting {when}", "warn")
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[PusherSocket]:
        pong = DEFAULT_PONG_TIMEOUT
        if self.activity_timeout is not None:
            pong = min(pong, max(self.activity_timeout, 1.0))
        sock = await PusherSocket.connect(
            self.target.url, activity_timeout=self.activity_timeout, pong_timeout=pong
        )
        async with sock:
            yield sock

    async def _subscribe(self, sock: PusherSocket) -> None:
        for channel in self.channels:
            auth = None
            if channel.startswith("private-"):
                auth = await self.auth(sock.socket_id, channel)
            try:
                await sock.subscribe(channel, auth=auth)
            except SubscriptionError as exc:
                if exc.status is None and self.following:
                    # no answer in time: a struggling server, not a refusal
                    raise ConnectionClosed(None, str(exc)) from exc
                raise pusher_error(exc, self.target) from exc
        again = "resubscribed" if self.following else "subscribed"
        # The socket id lets an operator see why X-Socket-ID (toOthers) hid an event.
        where = f"{', '.join(self.channels)} (socket {sock.socket_id})"
        self.output.note(f"{again} to {where}", "ok")

    async def _catch_up(self, since: Since | None) -> None:
        """Show what history holds after the cursor: --since, or what a drop made us miss."""
        first = not self.following
        try:
            shown = await self._read_history()
        except TailError as exc:
            if first:
                raise
            self.output.note(f"could not catch up from {self.history.name}: {exc}", "warn")
            return
        self.following = True
        if first and since is not None:
            what = f"{shown} stored event{'s' if shown != 1 else ''} since {since.text}"
            self.output.note(f"{what}; now following live", "ok")
        elif not first:
            missed = f"caught up on {shown} event{'s' if shown != 1 else ''}" if shown else ""
            self.output.note(missed or "nothing was missed while disconnected", "ok")

    async def _read_history(self) -> int:
        after, shown = self.cursor, 0
        while True:
            items, after = await self.history.page(after, lead_id=self.filters.lead_id, limit=PAGE)
            for item in items:
                shown += self._show_stored(item, Origin.STORED)
            self.cursor = after
            if len(items) < PAGE:
                return shown

    async def _on_live(self, message: PusherMessage) -> None:
        if message.channel not in self.channels:
            return
        data = message.data
        if message.channel.startswith(ENCRYPTED_PREFIX):
            try:
                data = decrypt_data(data, self.secrets[message.channel])
            except (KeyError, DecryptError) as exc:
                self.output.note(f"an event on {message.channel} was not shown: {exc}", "warn")
                return
        lead_id, seq = lead_id_of(data), _seq(data)
        if lead_id is not None and seq is not None and _event_id(data) not in self.seen:
            last = self.leads.get(lead_id)
            if last is not None and seq > last[0] + 1:
                await self._fetch_missed(lead_id, last, seq)
        self._show(message.channel, message.event, data, Origin.LIVE)

    async def _fetch_missed(self, lead_id: int, last: tuple[int, str], seq: int) -> None:
        gap = f"seq {last[0] + 1}" + (f"–{seq - 1}" if seq - 1 > last[0] + 1 else "")
        try:
            items, _ = await self.history.page(last[1], lead_id=lead_id, limit=seq - last[0] - 1)
        except TailError as exc:
            self.output.note(f"lead {lead_id}: {gap} never arrived live; fetching: {exc}", "warn")
            return
        shown = sum(self._show_stored(i, Origin.MISSED) for i in items if i["seq"] < seq)
        if shown:
            where = self.history.name
            self.output.note(
                f"lead {lead_id}: {gap} never arrived live; fetched from {where}", "warn"
            )

    def _show_stored(self, item: dict[str, Any], origin: Origin) -> int:
        channel = next((c for c in item.get("channels", ()) if c in self.channels), None)
        if channel is None:
            return 0
        return self._show(channel, str(item["event"]), item["data"], origin)

    def _show(self, channel: str, event: str, data: Any, origin: Origin) -> int:
        event_id = _event_id(data)
        if event_id is not None and not self.seen.add(event_id):
            return 0
        lead_id, seq = lead_id_of(data), _seq(data)
        if lead_id is not None and seq is not None and event_id is not None:
            last = self.leads.pop(lead_id, None)
            self.leads[lead_id] = max(last, (seq, event_id)) if last else (seq, event_id)
            if len(self.leads) > REMEMBERED:
                self.leads.popitem(last=False)
        if not self.filters.match(event, data):
            return 0
        self.output.event(Shown(channel, event, data, datetime.now(UTC), origin))
        return 1


def _event_id(data: Any) -> str | None:
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _seq(data: Any) -> int | None:
    value = data.get("seq") if isinstance(data, dict) else None
    return value if isinstance(value, int) else None


def pusher_error(exc: Exception, target: PusherTarget) -> LeadrelayError:
    """One line an operator can act on, with test-connection's exit code for the cause."""
    if isinstance(exc, LeadrelayError):
        return exc
    kinds: list[tuple[type[Exception], str]] = [
        (ConnectRefused, "refused"),
        (HostNotFound, "dns"),
        (ConnectTimeout, "timeout"),
        (TLSError, "tls"),
        (HandshakeRejected, "protocol"),
    ]
    kind = next((k for cls, k in kinds if isinstance(exc, cls)), "websocket")
    message = f"cannot connect to Pusher: {exc}"
    if isinstance(exc, ConnectionClosed) and exc.code is not None and 4000 <= exc.code <= 4099:
        kind = "auth" if exc.code in (4001, 4009) else "forbidden"
        reason = exc.reason.rstrip(".") or "no reason given"
        message = f"Pusher refused app key {target.key!r} (code {exc.code}): {reason}"
        message += "; check the key" if exc.code == 4001 else ""
    elif isinstance(exc, SubscriptionError):
        reason = str(exc).partition(" failed: ")[2].rstrip(".")
        kind = "auth" if exc.status is not None else "timeout"
        message = f"Pusher refused the subscription to {exc.channel}: {reason}"
        # soketi and Pusher answer a bad channel signature this way, nothing else
        message += "; check the Pusher secret" if exc.status is not None else ""
    return PusherError(message, kind=kind)


async def follow(options: TailOptions, plan: Plan, output: Output) -> None:
    since = options.since
    start: Cursor
    if since is None or since.cursor is None:
        back = since.seconds or 0.0 if since else 0.0
        start = await plan.history.cursor_at(time.time() - back)
    else:
        start = since.cursor
        if isinstance(start, str):  # fail now, before connecting, if there is no such event
            await plan.history.page(start, lead_id=None, limit=1)
    tail = Tail(
        target=plan.target,
        channels=plan.channels,
        auth=plan.auth,
        history=plan.history,
        output=output,
        filters=options.filters,
        activity_timeout=options.activity_timeout,
        secrets=plan.secrets,
    )
    await tail.run(start, since)


async def _tail(options: TailOptions, settings: Settings | None) -> None:
    if options.server:
        import httpx

        headers = {"Authorization": f"Bearer {options.token}"}
        async with httpx.AsyncClient(
            base_url=options.server, headers=headers, timeout=10.0
        ) as client:
            plan = await remote_plan(options, client)
            await follow(options, plan, make_output(options.as_json, plan.channels))
        return
    from leadrelay.cli.support import open_store

    assert settings is not None
    mode = Broadcast.of(settings)
    output = make_output(options.as_json, options.channels_in(mode))
    async with open_store(settings) as store:
        await follow(options, await local_plan(options, store, output, mode), output)


async def run_tail(options: TailOptions, settings: Settings | None) -> None:
    """Tail until Ctrl-C or SIGTERM, which return normally; fatal problems raise."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    work = asyncio.create_task(_tail(options, settings), name="tail")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    if not work.cancelled():
        try:
            work.result()
        except BrokenPipeError:
            # The reader went away (`tail | head`): that ends tail, quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
