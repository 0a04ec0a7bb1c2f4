"""Prometheus metrics: counters where things happen, outbox gauges read at scrape time.

When the relay runs in a process of its own, `serve` sets PROMETHEUS_MULTIPROC_DIR before
either process imports this module, and the API process merges both processes' files.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = CONTENT_TYPE_LATEST

LEADS_RECEIVED = Counter("leadrelay_leads_received_total", "Leads created (durably stored)")
EVENTS_RELAYED = Counter("leadrelay_events_relayed_total", "Events Pusher accepted")
EVENTS_FAILED = Counter(
    "leadrelay_events_failed_total", "Failed delivery attempts, by cause", ["cause"]
)
EVENTS_DEAD = Counter("leadrelay_events_dead_total", "Events moved to the dead-letter state")
PUSHER_API_EVENTS = Counter(
    "leadrelay_pusher_api_events_total",
    "Events apps triggered through Pusher's HTTP API, durably stored (one a channel)",
)
PUSHER_API_RELAYED = Counter(
    "leadrelay_pusher_api_events_relayed_total",
    "Of leadrelay_events_relayed_total, the events apps triggered through Pusher's HTTP API",
)
WRITES_REFUSED = Counter(
    "leadrelay_writes_refused_total",
    "New leads, status changes and Pusher API triggers answered 503 by the lead writer, "
    "by error code "
    "(writer_unavailable: not written in time or too many waiting; database_unavailable)",
    ["code"],
)
RELAY_LATENCY = Histogram(
    "leadrelay_relay_latency_seconds",
    "From the event's commit to Pusher accepting it",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def _gauge(name: str, help_text: str, value: float) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} gauge\n{name} {value}\n"


def render(
    outbox: dict[str, Any],
    now: float,
    watching: int = 0,
    *,
    relay_paused: bool = False,
    lease_held: bool | None = None,
) -> str:
    """The exposition text: this process's (or all processes') metrics plus the gauges read
    from the database at scrape time (the outbox, who watches, the relay's state and lease;
    the lease gauge only where there is one, on SQLite)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry).decode()
    else:
        text = generate_latest().decode()
    oldest = outbox.get("oldest_pending")
    age = max(0.0, now - float(oldest)) if oldest is not None else 0.0
    return (
        text
        + _gauge("leadrelay_outbox_pending", "Events waiting to be relayed", outbox["pending"])
        + _gauge("leadrelay_outbox_dead", "Events in the dead-letter state", outbox["dead"])
        + _gauge(
            "leadrelay_outbox_pusher_api_pending",
            "Of leadrelay_outbox_pending, the events apps triggered through Pusher's HTTP API",
            outbox.get("api_pending", 0),
        )
        + _gauge(
            "leadrelay_outbox_pusher_api_dead",
            "Of leadrelay_outbox_dead, the events apps triggered through Pusher's HTTP API",
            outbox.get("api_dead", 0),
        )
        + _gauge(
            "leadrelay_outbox_oldest_pending_age_seconds", "Age of the oldest pending event", age
        )
        + _gauge(
            "leadrelay_providers_watching",
            "Providers whose channel is occupied now (Pusher's channel webhooks)",
            watching,
        )
        + _gauge(
            "leadrelay_relay_paused",
            "1 while relaying is paused by a settings error (wrong key, secret or app)",
            int(relay_paused),
        )
        + (
            ""
            if lease_held is None
            else _gauge(
                "leadrelay_relay_lease_held",
                "1 while a daemon holds the relay lease (SQLite: the one daemon that relays)",
                int(lease_held),
            )
        )
    )
