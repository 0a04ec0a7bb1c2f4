"""Run wrk against a server and read its figures (req/s, p50/p99, non-2xx, socket errors)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib.procs import BENCH_DIR, BenchError

LUA_SCRIPT = BENCH_DIR / "post_lead.lua"


@dataclass
class WrkResult:
    url: str
    connections: int
    threads: int
    duration_s: float
    requests: int
    responses: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    raw: str

    @property
    def failures(self) -> int:
        """Responses with a status >= 300 plus requests that got no response."""
        return self.non_2xx + self.socket_errors

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("raw")
        return data


def run_wrk(
    url: str,
    *,
    duration_s: int,
    connections: int = 64,
    threads: int = 2,
    token: str = "",
    max_requests: int = 0,
    timeout_s: int = 5,
    script: Path = LUA_SCRIPT,
    script_env: dict[str, str] | None = None,
) -> WrkResult:
    """One wrk run of POSTs with unique lead names (or what `script` sends, configured by
    `script_env`); `max_requests` > 0 stops after ~that many."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (apt-get install -y wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as done_dir:
        env = dict(os.environ)
        env["BENCH_TOKEN"] = token
        env["BENCH_MAX_PER_THREAD"] = str(-(-max_requests // threads) if max_requests else 0)
        env["BENCH_DONE_DIR"] = done_dir
        env.update(script_env or {})
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s}s",
            f"--timeout={timeout_s}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + duration_s + timeout_s + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if max_requests and len(os.listdir(done_dir)) >= threads:
                proc.send_signal(signal.SIGINT)  # wrk stops early and still reports
                break
            time.sleep(0.05)
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise BenchError(f"wrk did not finish within {duration_s + timeout_s + 30} s") from None
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {stderr.strip() or stdout}")
    return parse_wrk(stdout, url=url, connections=connections, threads=threads)


def parse_wrk(output: str, *, url: str, connections: int, threads: int) -> WrkResult:
    match = re.search(r"^BENCH (.*)$", output, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk printed no BENCH line:\n{output}")
    fields = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    duration_s = fields["duration_us"] / 1e6
    return WrkResult(
        url=url,
        connections=connections,
        threads=threads,
        duration_s=duration_s,
        requests=fields["requests"],
        responses=fields["responses"],
        rps=fields["requests"] / duration_s if duration_s else 0.0,
        p50_ms=fields["p50_us"] / 1000,
        p90_ms=fields["p90_us"] / 1000,
        p99_ms=fields["p99_us"] / 1000,
        max_ms=fields["max_us"] / 1000,
        non_2xx=fields["non2xx"],
        socket_errors=fields["connect"] + fields["read"] + fields["write"] + fields["timeout"],
        raw=output,
    )


def median_round(
    pairs: list[tuple[WrkResult, WrkResult]], notes: list[str]
) -> tuple[WrkResult | None, WrkResult | None]:
    """Of rounds of (a run, the POST /api/leads run beside it), the one with the median
    ratio (the machine's speed drifts more than the gap measured); every round's ratio goes
    to `notes`."""
    if not pairs:
        return None, None
    pairs = sorted(pairs, key=lambda pair: pair[0].rps / pair[1].rps)
    if len(pairs) > 1:
        listed = ", ".join(f"{run.rps / beside.rps:.2f}×" for run, beside in pairs)
        notes.append(
            f"{len(pairs)} rounds, each beside the POST /api/leads run just before it: "
            f"{listed}; the row shows the median round"
        )
    return pairs[(len(pairs) - 1) // 2]
