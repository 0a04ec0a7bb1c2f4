"""How long and how much each measure runs: the full run and the CI smoke."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    smoke: bool
    connections: int  # wrk connections for the intake rows
    warmup_s: int  # a discarded wrk run before each measured one
    intake_s: int  # each measured intake run
    intake_rounds: int  # bare, paused, relaying run this many times, interleaved
    catch_up_timeout_s: float  # how long the relay may take to empty the outbox after a load
    e2e_rate: int  # leads (or triggers) per second, steady
    e2e_warmup_s: float  # sent at the same rate first, left out of the percentiles
    e2e_s: float
    drain_events: int  # leadrelay's backlog for the relay drain row
    peer_drain_events: int  # blocking triggers for its peer (one HTTP call each)
    ingest_in_flight: tuple[int, ...]  # soketi's ingest limit: the batches in flight tried
    backlog_events: int  # events waiting in the outbox for the memory row
    backlog_load_s: int  # wrk load while they wait, once paused and once relaying
    cli_runs: int  # `leadrelay --help` and `python -c pass`, each this many times
    console_rate: int = 100  # leads per second to the console's page, steady
    console_warmup_s: float = 2  # sent first, left out of the percentiles
    console_s: float = 10
    # delivered events stored for the retention rows (pruned in one run)
    stored_events: int = 1_000_000
    search_leads: int = 1_000_000  # leads stored for the search and stats rows
    search_samples: int = 210  # requests timed of each kind (search, stats, the list)

    @property
    def name(self) -> str:
        return "smoke" if self.smoke else "full"


FULL = Plan(
    smoke=False,
    connections=64,
    warmup_s=2,
    intake_s=10,
    intake_rounds=3,
    catch_up_timeout_s=60,
    e2e_rate=1000,
    e2e_warmup_s=2,
    e2e_s=20,
    drain_events=100_000,
    peer_drain_events=3_000,
    ingest_in_flight=(8, 16, 32, 64),
    backlog_events=1_000_000,
    backlog_load_s=10,
    cli_runs=10,
    stored_events=1_000_000,
)

# Tiny on purpose: CI checks that every row yields a number and nothing answers non-2xx.
SMOKE = Plan(
    smoke=True,
    connections=64,
    warmup_s=0,
    intake_s=1,
    intake_rounds=1,
    catch_up_timeout_s=10,
    e2e_rate=1000,
    e2e_warmup_s=0.5,
    e2e_s=1.5,
    drain_events=2_000,
    peer_drain_events=200,
    ingest_in_flight=(16,),
    backlog_events=20_000,
    backlog_load_s=1,
    cli_runs=3,
    console_warmup_s=0.5,
    console_s=1,
    # enough that the daemon is still pruning when the one-second load starts
    stored_events=100_000,
    search_leads=20_000,
    search_samples=21,
)
