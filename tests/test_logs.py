"""log_format: text by default; "json" is one object a line, uvicorn's lines included."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from pathlib import Path

import httpx

from leadrelay.logs import JsonFormatter
from support.serve import Serve, cli


def test_json_formatter_writes_time_level_logger_message_and_fields() -> None:
    record = logging.LogRecord("leadrelay.relay", logging.WARNING, "x.py", 1, "a %s", ("b",), None)
    record.cause = "timeout"
    record.lead_id = 7
    entry = json.loads(JsonFormatter().format(record))
    assert entry == {
        "time": entry["time"],
        "level": "warning",
        "logger": "leadrelay.relay",
        "message": "a b",
        "cause": "timeout",
        "lead_id": 7,
    }
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None  # RFC 3339, with the date
    assert entry["time"].endswith("Z") and entry["time"][:4].isdigit()


def test_serve_logs_json_lines_and_never_a_lead_field(tmp_path: Path) -> None:
    db = tmp_path / "logs.db"
    cli(db, "init")
    # Pusher on a closed port: the relay logs failures with their cause
    cli(db, "pusher", "set", "--app-id", "1", "--key", "k", "--secret", "s3cr3t-value")
    cli(db, "pusher", "set", "--host", "127.0.0.1", "--port", "9", "--scheme", "http")
    cli(db, "pusher", "enable")
    env = {"LEADRELAY_LOG_FORMAT": "json", "LEADRELAY_LOG_LEVEL": "info"}
    server = Serve(db, env=env).start()
    try:
        name, email = "Oriel Logtest-Person", "oriel.logtest@example.org"
        response = httpx.post(
            f"{server.url}/api/leads", json={"name": name, "email": email}, headers=server.auth()
        )
        assert response.status_code == 201
        deadline = time.monotonic() + 10
        while '"cause"' not in server.logs() and time.monotonic() < deadline:
            time.sleep(0.1)  # the relay's first failed try, logged with its cause
        logs = server.logs()
    finally:
        server.kill()
    lines = [line for line in logs.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
        datetime.fromisoformat(entry["time"])
    loggers = {entry["logger"] for entry in entries}
    assert "uvicorn.error" in loggers  # uvicorn's own lines, through the same formatter
    assert any(logger.startswith("leadrelay.") for logger in loggers)
    assert any(entry.get("cause") for entry in entries), logs
    text = "\n".join(lines)
    assert name not in text and email not in text and "s3cr3t-value" not in text


def test_text_stays_the_default(tmp_path: Path) -> None:
    db = tmp_path / "text.db"
    cli(db, "init")
    with Serve(db, relay="off") as server:
        logs = server.logs()
    lines = [line for line in logs.splitlines() if line.strip()]
    assert lines and not any(line.startswith("{") for line in lines)
    assert any("uvicorn.error: " in line for line in lines)
