"""What machine and software a run was on."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from typing import Any

from benchlib.procs import REPO_ROOT
from benchlib.soketi import SOKETI_BIN


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hypervisor() -> str:
    """' (KVM guest)' and the like: figures in a VM depend on its neighbours too."""
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in output.splitlines():
        if line.startswith("Hypervisor vendor:"):
            return f" ({line.split(':', 1)[1].strip()} guest)"
    return ""


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        with open("/proc/loadavg") as fh:
            return fh.read().split()[0]
    except OSError:
        return "unknown"


def cpu_probe_ms() -> float:
    """The best of three timings of a fixed single-core Python loop.  On a VM the host's
    other guests can slow every core with no sign here (no load average, no steal time):
    between runs, this says whether the machine itself was slower."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def memory_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def soketi_version() -> str:
    package = SOKETI_BIN.parent.parent / "@soketi" / "soketi" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "not installed"


def describe_machine() -> dict[str, Any]:
    commit = _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "leadrelay"])
    return {
        "cpu": cpu_model() + hypervisor(),
        "cores": os.cpu_count(),
        "memory_gib": memory_total_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "work_filesystem": " ".join(
            _first_line(["findmnt", "-no", "FSTYPE,SOURCE", "-T", tempfile.gettempdir()]).split()
        ),
        "leadrelay_commit": commit
        + (
            " (leadrelay/ has uncommitted changes)"
            if dirty not in ("", "unknown", "not found")
            else ""
        ),
        "packages": {
            name: version_of(name)
            for name in (
                "leadrelay",
                "starlette",
                "uvicorn",
                "uvloop",
                "httptools",
                "aiosqlite",
                "pusher",
                "aiohttp",
                "websockets",
            )
        },
        "wrk": _first_line(["wrk", "-v"]).split(" Copyright")[0],
        "node": _first_line(["node", "--version"]),
        "soketi": soketi_version(),
        "python_executable": sys.executable,
    }
