"""The daemon's search indexer (store/search_index.py), on a thread and a connection of its own."""

from __future__ import annotations

import asyncio
import threading

from leadrelay.config import Settings
from leadrelay.store import search_index

INTERVAL_SECONDS = 0.5  # how long a new lead waits at most, when the daemon is idle


async def keep_search_indexed(settings: Settings) -> None:
    """Run the indexer until cancelled (the daemon stops): a batch under way finishes, then
    its thread ends."""
    stop = threading.Event()
    thread = threading.Thread(
        target=search_index.keep_indexed,
        args=(settings.db, stop, INTERVAL_SECONDS),
        name="leadrelay-search-index",
        daemon=True,
    )
    thread.start()
    try:
        await asyncio.Event().wait()
    finally:
        stop.set()
        # its connection closes before the daemon's store does (a test drops the database)
        await asyncio.to_thread(thread.join, 10)
