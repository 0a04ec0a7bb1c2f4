"""Pusher-side helpers: event data shaped like leadrelay's, and a subscriber."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib.procs import BenchError, bench_env
from benchlib.soketi import Soketi


def lead_event(name: str, lead_id: int = 0) -> dict[str, Any]:
    """Data shaped like leadrelay's lead.assigned event, for the peers that trigger directly."""
    now = datetime.now(UTC).isoformat()
    lead = {
        "id": lead_id,
        "name": name,
        "email": None,
        "phone": None,
        "status": "new",
        "provider_id": None,
        "source": "bench",
        "created_at": now,
        "updated_at": now,
    }
    return {
        "event_id": str(uuid.uuid4()),
        "type": "lead.assigned",
        "seq": 1,
        "occurred_at": now,
        "lead": lead,
    }


@dataclass
class Received:
    received: list[tuple[str, str, int]]
    other_frames: int
    error: str

    @property
    def distinct_event_ids(self) -> int:
        return len({event_id for _, event_id, _ in self.received})


class Subscriber:
    """benchlib.subscriber in its own process, so receiving never waits on the sender's loop."""

    def __init__(self, soketi: Soketi, out: Path, channel: str = "admin") -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchlib.subscriber",
                "--url",
                soketi.ws_url,
                "--channel",
                channel,
                "--out",
                str(out),
            ],
            env=bench_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._wait_line("READY", timeout=20)

    def _wait_line(self, wanted: str, timeout: float) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.strip() == wanted:
                    return
                if line.startswith("ERROR"):
                    raise BenchError(f"subscriber: {line.strip()}")
        self.proc.kill()
        raise BenchError(f"subscriber did not print {wanted} within {timeout:.0f} s")

    def _send(self, command: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def expect(self, count: int) -> None:
        self._send(f"expect {count}")

    def finish(self, timeout: float) -> Received:
        """Wait up to `timeout` s for the expected count (if set), then collect what arrived."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._send("stop")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise BenchError("subscriber did not stop") from None
        assert self.proc.stdout is not None
        tail = self.proc.stdout.read()
        error = next((ln for ln in tail.splitlines() if ln.startswith("ERROR")), "")
        if not self.out.exists():
            raise BenchError(f"subscriber wrote nothing ({error or 'no error printed'})")
        data = json.loads(self.out.read_text())
        return Received(
            [(str(name), str(eid), int(ns)) for name, eid, ns in data["received"]],
            data["other_frames"],
            error,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
