"""Settings: one object, one precedence — flag > LEADRELAY_* env > leadrelay.toml > default."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from leadrelay.errors import ConfigError

DEFAULT_STATUSES = ("new", "contacted", "qualified", "converted", "lost")
# an origin as a browser sends it: scheme, host, optional port, no path
ORIGIN = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?$")
# list settings that may be empty (an empty `statuses` would leave no status for a new lead)
_MAY_BE_EMPTY = ("cors_origins",)
PG_SCHEMES = ("postgresql://", "postgres://")
DB_ENV = "LEADRELAY_DB"  # also how the daemon hands its database to its child processes


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True)
class Settings:
    """Every setting, its default and what it is for (leadrelay.toml mirrors this)."""

    db: Path | str = field(
        default=Path("leadrelay.db"),
        metadata=_doc("SQLite database file, or a postgresql://user@host:5432/name URL"),
    )
    host: str = field(default="127.0.0.1", metadata=_doc("address `serve` listens on"))
    port: int = field(default=8000, metadata=_doc("port `serve` listens on"))
    statuses: tuple[str, ...] = field(
        default=DEFAULT_STATUSES, metadata=_doc("allowed lead statuses; the first is a new lead's")
    )
    max_body_bytes: int = field(default=65536, metadata=_doc("largest request body (413 above)"))
    idempotency_ttl_hours: float = field(
        default=72.0, metadata=_doc("how long an Idempotency-Key / webhook-id is remembered")
    )
    events_retention_days: float = field(
        default=30.0,
        metadata=_doc("delivered events older than this are pruned (days); 0 keeps all"),
    )
    prune_interval_seconds: float = field(
        default=60.0, metadata=_doc("how often the daemon prunes what retention keeps no more")
    )
    webhook_tolerance_seconds: int = field(
        default=300, metadata=_doc("allowed clock difference for webhook-timestamp")
    )
    webhook_grace_hours: float = field(
        default=24.0, metadata=_doc("how long a rotated webhook secret keeps working")
    )
    rate_limit_per_second: float = field(
        default=0.0, metadata=_doc("intake requests/s per token or IP; 0 turns the limit off")
    )
    rate_limit_burst: int = field(default=200, metadata=_doc("intake burst per token or IP"))
    relay: str = field(
        default="process",
        metadata=_doc("where the relay runs: 'process' (its own core), 'inline' or 'off'"),
    )
    writer: str = field(
        default="process",
        metadata=_doc("where `serve` writes new leads: 'process' (its own core) or 'inline'"),
    )
    write_timeout_seconds: float = field(
        default=8.0,
        metadata=_doc("a new lead not durable by then is a 503 writer_unavailable, not stored"),
    )
    write_queue_limit: int = field(
        default=1000, metadata=_doc("new leads waiting for the writer at most (503 past it)")
    )
    relay_poll_seconds: float = field(
        default=0.2, metadata=_doc("how often the relay looks for events written elsewhere")
    )
    relay_batch_size: int = field(default=10, metadata=_doc("events per trigger_batch (max 10)"))
    relay_in_flight: int = field(default=32, metadata=_doc("trigger requests in flight at once"))
    relay_timeout_seconds: float = field(default=5.0, metadata=_doc("timeout of one Pusher call"))
    relay_max_backoff_seconds: float = field(
        default=60.0, metadata=_doc("longest wait between two tries of one event")
    )
    relay_claim_seconds: float = field(
        default=15.0,
        metadata=_doc("PostgreSQL: how long a relay's claim on an event keeps other daemons off"),
    )
    log_level: str = field(default="info", metadata=_doc("debug, info, warning or error"))
    admin_channel: str = field(
        default="admin",
        metadata=_doc("the admin feed: 'admin' (public) or 'private-admin' (admin tokens only)"),
    )
    encrypted_channels: bool = field(
        default=False,
        metadata=_doc("end-to-end encrypted feeds: private-encrypted-admin and -provider.{id}"),
    )
    broadcast_personal_data: bool = field(
        default=True, metadata=_doc("false: broadcasts leave out the lead's name, email, phone")
    )
    presence_sync_seconds: float = field(
        default=60.0,
        metadata=_doc("how often Pusher's occupied channels correct who is watching; 0: never"),
    )
    cors_origins: tuple[str, ...] = field(
        default=(),
        metadata=_doc("origins whose pages may call /broadcasting/* and the provider/admin APIs"),
    )
    forwarded_allow_ips: str = field(
        default="127.0.0.1",
        metadata=_doc("proxies trusted for X-Forwarded-For/-Proto: IPs, '*' or 'none'"),
    )
    log_format: str = field(
        default="text", metadata=_doc("'text' for people, 'json' for one JSON object a line")
    )
    console_pusher_js: str = field(
        default="",
        metadata=_doc("a local pusher-js file the console loads instead of Pusher's CDN"),
    )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


SETTING_NAMES = tuple(f.name for f in fields(Settings))


def is_postgres(db: object) -> bool:
    """A `db` that names a PostgreSQL database (a URL) rather than a SQLite file."""
    return isinstance(db, str) and db.startswith(PG_SCHEMES)


def describe_db(db: Path | str) -> str:
    """The `db` setting as it may be shown: a URL without its password."""
    if not is_postgres(db):
        return str(db)
    parts = urlsplit(str(db))
    if parts.password is None:
        return str(db)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def resolved_db(db: Path | str) -> str:
    """The `db` setting as a child process is handed it: a URL, or an absolute path."""
    return str(db) if is_postgres(db) else str(Path(db).resolve())


def parse_db(text: str) -> Path | str:
    return text if is_postgres(text) else Path(text)


def _coerce(name: str, value: Any) -> Any:
    """Turn a TOML, env or flag value into the type the field wants."""
    default = next(f.default for f in fields(Settings) if f.name == name)
    try:
        if name == "db" and is_postgres(value):
            return str(value)
        if isinstance(default, Path):
            return Path(str(value)).expanduser()
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            cleaned = tuple(str(item).strip() for item in items if str(item).strip())
            if not cleaned and name not in _MAY_BE_EMPTY:
                raise ValueError("empty list")
            if name == "cors_origins":
                return tuple(_origin(item) for item in cleaned)
            return cleaned
        if isinstance(default, bool):
            return str(value).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} has a bad value {value!r}: {exc}") from None


def _origin(text: str) -> str:
    origin = text.rstrip("/").lower()
    if origin == "*":
        raise ValueError("'*' is not allowed: list the dashboards' origins")
    if not ORIGIN.fullmatch(origin):
        raise ValueError(f"{text!r} is not an origin like 'https://dashboard.example.com'")
    return origin


def find_config_file(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("LEADRELAY_CONFIG"):
        return Path(env["LEADRELAY_CONFIG"])
    default = Path("leadrelay.toml")
    return default if default.exists() else None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"settings file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
    table = data.get("leadrelay", data)
    unknown = sorted(set(table) - set(SETTING_NAMES))
    if unknown:
        raise ConfigError(f"settings file {path} has unknown settings: {', '.join(unknown)}")
    return dict(table)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings; `flags` holds command-line values (None means "not given")."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = find_config_file(config_file, env)
    if path is not None:
        values.update(read_config_file(path))
        # a relative db path in the file is relative to the file, as users expect
        db = values.get("db")
        if db is not None and not is_postgres(db) and not Path(str(db)).is_absolute():
            values["db"] = path.parent / str(values["db"])
    for name in SETTING_NAMES:
        env_value = env.get(f"LEADRELAY_{name.upper()}")
        if env_value is not None and env_value != "":
            values[name] = env_value
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = value
    settings = Settings(**{name: _coerce(name, value) for name, value in values.items()})
    # absolute from here on: every message names the file exactly, whatever the cwd
    if not is_postgres(settings.db):
        settings = settings.replace(db=Path(settings.db).absolute())
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if settings.writer not in ("process", "inline"):
        raise ConfigError("setting 'writer' must be 'process' or 'inline'")
    if settings.relay not in ("process", "inline", "off"):
        raise ConfigError("setting 'relay' must be 'process', 'inline' or 'off'")
    if not 1 <= settings.relay_batch_size <= 10:
        raise ConfigError("setting 'relay_batch_size' must be 1 to 10 (Pusher's batch limit)")
    if settings.relay_claim_seconds <= settings.relay_timeout_seconds:
        raise ConfigError(
            "setting 'relay_claim_seconds' must be longer than 'relay_timeout_seconds': a "
            "claim must outlast the send it covers, or another daemon sends the event too"
        )
    if settings.relay_in_flight < 1:
        raise ConfigError("setting 'relay_in_flight' must be at least 1")
    if not 1 <= settings.port <= 65535:
        raise ConfigError("setting 'port' must be 1 to 65535")
    if settings.events_retention_days < 0:
        raise ConfigError("setting 'events_retention_days' must be 0 (keep all) or more")
    if settings.prune_interval_seconds <= 0:
        raise ConfigError("setting 'prune_interval_seconds' must be more than 0")
    if settings.log_format not in ("text", "json"):
        raise ConfigError("setting 'log_format' must be 'text' or 'json'")
    if settings.write_timeout_seconds <= 0:
        raise ConfigError("setting 'write_timeout_seconds' must be more than 0")
    if settings.write_queue_limit < 1:
        raise ConfigError("setting 'write_queue_limit' must be at least 1")
    if settings.presence_sync_seconds < 0:
        raise ConfigError("setting 'presence_sync_seconds' must be 0 (off) or more")
    if settings.admin_channel not in ("admin", "private-admin"):
        raise ConfigError("setting 'admin_channel' must be 'admin' or 'private-admin'")
    if settings.max_body_bytes < 1024:
        raise ConfigError("setting 'max_body_bytes' must be at least 1024")
