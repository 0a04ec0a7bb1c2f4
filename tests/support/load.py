"""Load on one `serve` in a thread: leads created and walked through WALK until stopped."""

from __future__ import annotations

import threading
import time

import httpx

from support.serve import WALK, Serve


class Load:
    """Leads created and walked through WALK on one daemon, in a thread, until stopped or the
    daemon stops answering.  `acked[lead_id]` counts the lead's events acknowledged."""

    def __init__(self, serve: Serve, prefix: str, acked: dict[int, int]) -> None:
        self.serve = serve
        self.prefix = prefix
        self.acked = acked
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.serve.url, headers=self.serve.auth(), timeout=10) as c:
            while not self.stop.is_set():
                n += 1
                try:
                    response = c.post("/api/leads", json={"name": f"{self.prefix} {n}"})
                    if response.status_code != 201:
                        continue
                    lead_id = response.json()["id"]
                    self.acked[lead_id] = 1
                    for status in WALK:
                        patch = c.patch(f"/api/admin/leads/{lead_id}", json={"status": status})
                        if patch.status_code != 200:
                            break
                        self.acked[lead_id] += 1
                except httpx.HTTPError:
                    return  # the daemon was killed: what it acknowledged is recorded
                time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(20)
