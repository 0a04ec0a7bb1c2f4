"""Logging setup: one line per record on stderr, as text or as JSON; never a secret.

`log_format = "json"` writes one object a line: `time` (RFC 3339, UTC, with the date),
`level`, `logger`, `message`, then the record's fields (`extra={"lead_id": …}`: lead_id,
event_id, cause, …) and `exception` when there is one.  uvicorn's own loggers get the same
handler, so every line of the daemon has one shape.  Log calls pass ids and causes, never
a lead's fields or a secret: the formatter prints what it is given.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from leadrelay.config import mask_secrets

# the daemon's loggers, and uvicorn's: `uvicorn.error` is where uvicorn says what it does
LOGGERS = ("leadrelay", "uvicorn", "uvicorn.error", "uvicorn.access")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, without a password (config.mask_secrets: a driver's
    or a library's message may quote a database URL)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line, without a password (see TextFormatter)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(self._format(record))

    def _format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[
                :-6
            ]
            + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


def setup_logging(level: str = "info", log_format: str | None = None) -> None:
    """Send leadrelay's and uvicorn's records to stderr in `log_format` (default: the
    LEADRELAY_LOG_FORMAT environment, which `serve` sets for its child processes)."""
    chosen = log_format or os.environ.get("LEADRELAY_LOG_FORMAT") or "text"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(chosen))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.getLogger("leadrelay").setLevel(level.upper())
    logging.getLogger("uvicorn").setLevel(level.upper())
