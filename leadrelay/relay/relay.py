"""The relay: claims due outbox events and delivers them to Pusher, at least once, in order.

Order per key (store/ordering.py's ORDER_KEY: a lead's events, or the events an app triggered on
one channel through Pusher's API) holds because an event is only due when no earlier event of
its key is still pending, and a key with an event in flight gets no other until that one
settles.
On SQLite, claims live in memory: an event sent but not yet marked delivered when the process
dies is simply pending again after restart (at least once; `event_id` lets clients drop the
copy), and only the holder of the relay lease sends (lease.py): a second daemon on the
database stands by.  On PostgreSQL (`store.claims_per_event`) every daemon's relay sends:
each claims the events it sends in the database (owner, expiry: FOR UPDATE SKIP LOCKED), an
earlier event of a key, claimed or not, keeps its later ones back, and a dead daemon's claims
run out after `relay_claim_seconds` for the others to send.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

from leadrelay import metrics
from leadrelay.config import Settings
from leadrelay.errors import PusherError
from leadrelay.events import Broadcast
from leadrelay.pusher import config as pusher_config
from leadrelay.pusher.config import PusherConfig
from leadrelay.pusher.http import PusherClient, PusherStatusError
from leadrelay.relay import batches
from leadrelay.relay.batches import backoff, batch_items, events_text
from leadrelay.relay.lease import RENEW_SECONDS, RelayLease
from leadrelay.store.base import RELAY_STATE_KEY, Row, Store
from leadrelay.store.ordering import order_key

log = logging.getLogger("leadrelay.relay")

PAUSING = {"auth", "unknown_app", "forbidden", "not_configured"}
PAUSED_PROBE_SECONDS = 10.0
CONFIG_CHECK_SECONDS = 0.5  # how often the settings are read again: followed within a second


class Relay:
    """One relay loop over one store."""

    def __init__(self, store: Store, settings: Settings, lease: RelayLease | None = None) -> None:
        self.store = store
        self.settings = settings
        self.mode = Broadcast.of(settings)
        self.lease = lease
        # this relay's name on the events it claims (claims_per_event stores)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.config = PusherConfig()
        self.client: PusherClient | None = None
        self.paused_reason: str | None = None
        self._config_version: str | None = "unread"
        self._config_checked = 0.0
        self._paused_at = 0.0
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.relay_in_flight)
        self._sends = 0  # batches being sent: relay_in_flight less this may start now
        self._claim_at = max(1, settings.relay_in_flight // 4)  # free slots a claim waits for
        self._in_flight_keys: set[int] = set()  # ORDER_KEYs with an event being sent
        self._in_flight: set[int] = set()  # event ids being sent
        self._settled: set[int] = set()
        self._unmarked: set[int] = set()  # delivered, the mark not yet committed
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._failing_since: float | None = None  # when deliveries began to fail
        self.delivered = 0
        # told whether commits should wake this relay: only while it can send (runner.py)
        self.want_wake_ups: Callable[[bool], None] = lambda wanted: None

    def wake(self, _count: int = 0) -> None:
        self._wake.set()

    # configuration ------------------------------------------------------------
    async def refresh_config(self, *, force: bool = False) -> None:
        """Follow `pusher set/enable/disable` from any process within a second."""
        now = time.monotonic()
        if not force and now - self._config_checked < CONFIG_CHECK_SECONDS:
            return
        self._config_checked = now
        version = await self.store.setting_version(pusher_config.SETTING_KEY)
        if version == self._config_version:
            return
        first = self._config_version == "unread"
        self._config_version = version
        config = await pusher_config.load(self.store)
        if config == self.config and self.client is not None:
            return
        if first and not (config.enabled and config.complete):
            log.info("Pusher is off: events wait in the outbox until 'leadrelay pusher enable'")
        elif first:
            log.info("relaying to %s", config.server_host)
        else:
            log.info("pusher settings changed: %s", "enabled" if config.enabled else "disabled")
        await self._close_client()
        self.config = config
        await self._set_paused(None)
        if config.enabled and config.complete:
            try:
                self.client = PusherClient(config, timeout=self.settings.relay_timeout_seconds)
            except PusherError as exc:
                await self._set_paused(str(exc))

    async def _close_client(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    async def _set_paused(self, reason: str | None, *, record: bool = False) -> None:
        if reason == self.paused_reason and not record:
            return
        was_paused = self.paused_reason is not None
        self.paused_reason = reason
        self._paused_at = time.monotonic()
        if reason:
            log.error("relaying paused: %s (events wait in the outbox)", reason)
        elif was_paused:
            log.info("relaying running again")
        if not self._active:
            return  # the relay that holds the lease owns the state
        # the state is kept in the database so /readyz, `outbox status` and `doctor`
        # can show it whichever process the relay runs in
        state = {"paused_reason": reason, "at": time.time()}
        await self.store.write(lambda tx: tx.put_setting(RELAY_STATE_KEY, state, ""))

    # the loop -----------------------------------------------------------------
    @property
    def _sending(self) -> bool:
        """Pusher is set up and no settings error paused it: events are due to be sent."""
        return self.client is not None and self.paused_reason is None

    @property
    def _active(self) -> bool:
        return self.lease is None or self.lease.held

    async def run(self) -> None:
        keeper = asyncio.create_task(self.lease.keep()) if self.lease is not None else None
        try:
            await self._run()
        finally:
            if keeper is not None:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)

    async def _stand_by(self) -> None:
        """Wait while another relay holds the lease; then start from a fresh state (a relay
        that died paused left its reason behind)."""
        assert self.lease is not None
        while not self._stopping and not self.lease.held:
            try:
                await asyncio.wait_for(self.lease.gained.wait(), timeout=RENEW_SECONDS)
            except TimeoutError:
                pass
        self._config_version = "unread"  # settings may have changed while standing by
        await self._set_paused(None, record=True)

    async def _run(self) -> None:
        await self._set_paused(None, record=True)
        while not self._stopping:
            # cleared before looking, never after: a wake-up that comes while we look
            # means another look, not a lost event waiting for the next poll
            self._wake.clear()
            try:
                if not self._active:
                    await self._stand_by()
                    continue
                await self.refresh_config()
                self.want_wake_ups(self._sending)
                if await self._can_send():
                    if await self._dispatch_due():
                        continue
                await self._sleep_until_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep relaying through a bad moment (a locked db…)
                log.error("relay loop error: %s", exc)
                await asyncio.sleep(0.5)

    async def _can_send(self) -> bool:
        if self.client is None or not self._active:
            return False
        if self.paused_reason is None:
            return True
        # paused by a settings error: probe again now and then (a fixed key, a renewed quota)
        return time.monotonic() - self._paused_at >= PAUSED_PROBE_SECONDS

    async def _dispatch_due(self) -> bool:
        """Start sending what is due; True when something was started."""
        capacity = self.settings.relay_in_flight * self.settings.relay_batch_size
        # the query reads a snapshot: an event settled while it ran may still look pending
        self._settled.clear()
        # what is in flight or delivered-but-unmarked is still pending in the database; the
        # query skips it, so a send that finishes costs a read of only what is new
        busy = self._in_flight | self._unmarked
        # the store says how relays share the outbox: with claims per event (PostgreSQL)
        # what it returns is claimed for this relay alone; else it is a read, and the relay
        # lease keeps every other relay quiet
        per_event = self.store.claims_per_event
        free = self.settings.relay_in_flight - self._sends
        # a claim is for what goes out now: one that waited for a slot could run out
        # before its send began, and another daemon then sends the same events.  Under a
        # backlog it waits for a quarter of the slots to be free, so that a claim (a walk
        # past the other relays' claimed events) is made for many sends, not one
        limit = free * self.settings.relay_batch_size if per_event else capacity * 2
        if per_event and (free <= 0 or (self._sends and free < self._claim_at)):
            return False
        rows = await self.store.claim_due(
            self.owner, time.time(), limit, busy, self.settings.relay_claim_seconds
        )
        due: list[Row] = []
        unsent: list[int] = []
        keys_taken: set[int] = set()
        for row in rows:
            key = order_key(row)
            if (
                key in self._in_flight_keys
                or key in keys_taken
                or row["id"] in self._settled
                or row["id"] in self._unmarked
            ):
                unsent.append(row["id"])
                continue
            keys_taken.add(key)
            due.append(row)
        if not due:
            await self._give_back(unsent)
            return False
        runs, left = await batches.runs_of(
            self.store, self.owner, due, busy | self._settled, self.settings
        )
        unsent.extend(left)
        paused = self.paused_reason is not None
        packed = batches.pack_batches(runs, self.settings.relay_batch_size)
        if paused:
            started = packed[:1]
        else:
            started = packed[:free] if per_event else packed
        unsent.extend(event["id"] for batch in packed[len(started) :] for event in batch)
        for index, batch in enumerate(started):
            await self._slots.acquire()
            # settings changed, or the lease ran out, while we waited for a slot
            if self.client is None or not self._active:
                self._slots.release()
                unsent.extend(event["id"] for later in started[index:] for event in later)
                await self._give_back(unsent)
                return True
            for event in batch:
                self._in_flight_keys.add(order_key(event))
                self._in_flight.add(event["id"])
            self._sends += 1
            task = asyncio.create_task(self._send_in_slot(self.client, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if paused:
            self._paused_at = time.monotonic()  # one probe per period
        await self._give_back(unsent)
        return True

    async def _give_back(self, ids: list[int]) -> None:
        """Claims this relay will not send now go back at once, not when they run out."""
        if ids and self.store.claims_per_event:
            await self.store.release_claims(self.owner, ids)

    async def _sleep_until_due(self) -> None:
        timeout = self.settings.relay_poll_seconds
        if not self._sending:
            # no commit wakes a relay that cannot send: the settings must still be followed
            timeout = min(timeout, CONFIG_CHECK_SECONDS)
        # with sends in flight, their completion wakes us; otherwise sleep to the next head
        elif not self._tasks:
            next_due = await self.store.next_due_time()
            if next_due is not None:
                timeout = min(timeout, max(0.0, next_due - time.time()))
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.001))
        except TimeoutError:
            pass

    async def _send_in_slot(self, client: PusherClient, batch: list[Row]) -> None:
        try:
            await self._send(client, batch)
        except Exception as exc:  # e.g. the database locked: the events stay pending
            log.error("could not record the outcome of %s: %s", events_text(len(batch)), exc)
        finally:
            # settled before the key is released, so a snapshot read meanwhile can't resend
            self._settled.update(event["id"] for event in batch)
            for event in batch:
                self._in_flight_keys.discard(order_key(event))
                self._in_flight.discard(event["id"])
            self._sends -= 1
            self._slots.release()
            self._wake.set()

    async def _send(self, client: PusherClient, batch: list[Row]) -> None:
        ids = [event["id"] for event in batch]
        try:
            await client.trigger_batch(batch_items(batch, self.mode))
        except PusherError as exc:
            await self._failed(client, batch, exc)
        except Exception as exc:  # an unexpected failure is retried, never lost
            await self._failed(client, batch, PusherError(f"unexpected: {exc!r}", kind="protocol"))
        else:
            now = time.time()
            for event in batch:
                metrics.RELAY_LATENCY.observe(max(0.0, now - event["created_at"]))
            metrics.EVENTS_RELAYED.inc(len(batch))
            apps = sum(1 for event in batch if event["lead_id"] is None)
            if apps:  # of them, events apps triggered through Pusher's HTTP API
                metrics.PUSHER_API_RELAYED.inc(apps)
            self.delivered += len(batch)
            # the mark is written apart, so a slot never waits on the database's write lock
            # (the intake holds it often); until it commits, the events count as unmarked
            self._unmarked.update(ids)
            task = asyncio.create_task(self._mark_delivered(ids))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if self.paused_reason is not None:
                await self._set_paused(None)
            if self._failing_since is not None:
                await self._resumed()

    async def _resumed(self) -> None:
        """One line when deliveries succeed again after they failed: an operator watching the
        log during an outage learns it is over, and how much it left behind."""
        if self._failing_since is None:
            return
        took, self._failing_since = time.monotonic() - self._failing_since, None
        waiting = await self.store.pending_count()
        log.info("delivery resumed after %.0f s: %s waiting", took, events_text(waiting))

    async def _mark_delivered(self, ids: list[int]) -> None:
        try:
            await self.store.write(lambda tx: tx.mark_delivered(ids, self.owner))
        except Exception as exc:  # they stay pending and go again: at least once
            log.error("could not mark %s delivered: %s", events_text(len(ids)), exc)
        finally:
            self._settled.update(ids)
            self._unmarked.difference_update(ids)
            self._wake.set()

    async def _failed(self, client: PusherClient, batch: list[Row], exc: PusherError) -> None:
        metrics.EVENTS_FAILED.labels(cause=exc.kind).inc(len(batch))
        ids = [event["id"] for event in batch]
        message = str(exc)
        refused = exc.kind == "too_large" or (
            isinstance(exc, PusherStatusError) and exc.status == 400
        )
        if refused and len(batch) > 1:
            # find the one Pusher refuses: each event goes again on its own, in the batch's
            # order (a key's events in it are in order), each under a claim renewed for its
            # send; one whose claim is no longer this relay's is another's to send
            for event in batch:
                if await self._still_claimed([event["id"]]):
                    await self._send(client, [event])
            return
        if refused:
            log.error(
                "%s dead-lettered (ids %s): %s",
                events_text(len(ids)),
                ids,
                message,
                extra={"cause": exc.kind, "event_id": ",".join(e["event_id"] for e in batch)},
            )
            metrics.EVENTS_DEAD.inc(len(batch))
            await self.store.write(lambda tx: tx.mark_dead(ids, message, self.owner))
            return
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        if exc.kind in PAUSING:
            # the pause line says it all; the pause spaces the probes, so the events are due
            # now and fixed settings resume at once
            await self._set_paused(message)
            delay = 0.0
        else:
            if isinstance(exc, PusherStatusError) and exc.retry_after is not None:
                delay = float(exc.retry_after)
            else:
                delay = backoff(max(event["attempts"] for event in batch), self._max_backoff)
            log.warning(
                "delivery of %s failed (%s); retry in %.1f s",
                events_text(len(ids)),
                message,
                delay,
                extra={"cause": exc.kind, "event_id": ",".join(e["event_id"] for e in batch)},
            )
        next_at = time.time() + delay
        await self.store.write(lambda tx: tx.mark_retry(ids, next_at, message, self.owner))

    async def _still_claimed(self, ids: list[int]) -> bool:
        """Before a send that was not just claimed: renew the claim, if it is still this
        relay's (claims per event), or check the relay lease is still held."""
        if not self.store.claims_per_event:
            return self._active
        renewed = await self.store.write(
            lambda tx: tx.renew_claims(self.owner, ids, self.settings.relay_claim_seconds)
        )
        return len(renewed) == len(ids)

    @property
    def _max_backoff(self) -> float:
        return self.settings.relay_max_backoff_seconds

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop claiming; give in-flight sends a moment to settle (they are redone if not)."""
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + drain_seconds
        while self._tasks and time.monotonic() < deadline:  # sends, then their marks
            await asyncio.wait(set(self._tasks), timeout=deadline - time.monotonic())
        await self._close_client()
        if self.lease is not None:
            await self.lease.release()
        if self.store.claims_per_event:
            try:  # what was claimed and not sent goes to the other daemons now
                await self.store.release_claims(self.owner)
            except Exception as exc:
                log.warning("could not give back this relay's claims (they run out): %s", exc)
