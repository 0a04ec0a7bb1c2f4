"""Settings: one object, one precedence — flag > LEADRELAY_* env > leadrelay.toml > default."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from leadrelay.errors import ConfigError

DEFAULT_STATUSES = ("new", "contacted", "qualified", "converted", "lost")
# an origin as a browser sends it: scheme, host, optional port, no path
ORIGIN = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?$")
# list settings that may be empty (an empty `statuses` would leave no status for a new lead)
_MAY_BE_EMPTY = ("cors_origins", "closed_statuses")
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
    closed_statuses: tuple[str, ...] = field(
        default=("converted", "lost"),
        metadata=_doc("statuses of a lead that is done; the others are open (the console)"),
    )
    max_body_bytes: int = field(default=65536, metadata=_doc("largest request body (413 above)"))
    max_header_bytes: int = field(
        default=16384,
        metadata=_doc("largest request line and headers, in bytes (431 above; h11's default)"),
    )
    max_header_count: int = field(
        default=100, metadata=_doc("most headers in one request (431 above)")
    )
    request_timeout_seconds: float = field(
        default=10.0,
        metadata=_doc("a whole request (headers and body) must arrive within this (408 after)"),
    )
    max_connections: int = field(
        default=1000,
        metadata=_doc("connections or requests in progress at once; past it a request gets 503"),
    )
    idempotency_ttl_hours: float = field(
        default=72.0,
        metadata=_doc(
            "how long an Idempotency-Key / webhook-id is remembered; at least twice "
            "webhook_tolerance_seconds"
        ),
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
    auth_failures_per_minute: int = field(
        default=30,
        metadata=_doc(
            "failed token checks (401) per client address a minute; past them 429 with "
            "Retry-After; 0: no limit"
        ),
    )
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
    pusher_api: bool = field(
        default=False,
        metadata=_doc("serve Pusher's HTTP API (/apps/{id}/...) for apps' Pusher SDKs to use"),
    )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def open_statuses(self) -> tuple[str, ...]:
        """The statuses of a lead still to be worked on (a closed status not among
        `statuses` is ignored)."""
        return tuple(status for status in self.statuses if status not in self.closed_statuses)


SETTING_NAMES = tuple(f.name for f in fields(Settings))
# LEADRELAY_* variables that are not settings but are read all the same
OTHER_ENV = ("LEADRELAY_CONFIG", "LEADRELAY_SERVER", "LEADRELAY_TOKEN", "LEADRELAY_TEST_POSTGRES",
             "LEADRELAY_BENCH_POSTGRES", "LEADRELAY_JS_TEST", "LEADRELAY_COPY_TO")  # fmt: skip
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def env_name(name: str) -> str:
    return f"LEADRELAY_{name.upper()}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' when one choice is close to a misspelt word, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_env_warnings(env: Mapping[str, str]) -> list[str]:
    """A LEADRELAY_* variable that names no setting is ignored: say so, rather than let a
    typo (LEADRELAY_PROT) pass for a setting in force."""
    known = {env_name(name) for name in SETTING_NAMES} | set(OTHER_ENV)
    return [
        f"{var} is not a leadrelay setting and is ignored{did_you_mean(var, known)}"
        for var in sorted(env)
        if var.startswith("LEADRELAY_") and var not in known
    ]


def is_postgres(db: object) -> bool:
    """A `db` that names a PostgreSQL database (a URL) rather than a SQLite file."""
    return isinstance(db, str) and db.startswith(PG_SCHEMES)


def describe_db(db: Path | str) -> str:
    """The `db` setting as it may be shown: a URL without its password (in any form)."""
    return mask_secrets(str(db)) if is_postgres(db) else str(db)


# A password in a URL's userinfo, in a URL's query or a libpq key=value string (quoted or
# not; sslpassword too), and the passwords of the databases this process has been given:
# a driver's error may quote one out of its place (libpq's "invalid percent-encoded token").
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@")
_PASSWORD_PARAM = re.compile(
    r"\b((?:ssl)?password)\s*=\s*(?:'(?:[^'\\]|\\.)*'|[^\s&'\"]*)", re.IGNORECASE
)
_KNOWN_PASSWORDS: set[str] = set()


def remember_password(db: Path | str) -> None:
    """Mask the password of this database URL wherever a message quotes it from now on."""
    if not is_postgres(db):
        return
    parts = urlsplit(str(db))
    found = [parts.password or ""]
    found += [value for key, value in parse_qsl(parts.query) if key.lower().endswith("password")]
    for password in found:
        _KNOWN_PASSWORDS.update(p for p in (password, unquote(password)) if p)


def mask_secrets(text: str) -> str:
    """`text` with every password written as ***: for every message that may quote a
    database URL or a driver's error (CLI errors, API errors, logs)."""
    text = _USERINFO.sub(r"\1:***@", text)
    text = _PASSWORD_PARAM.sub(r"\1=***", text)
    for password in sorted(_KNOWN_PASSWORDS, key=len, reverse=True):
        text = text.replace(password, "***")
    return text


def resolved_db(db: Path | str) -> str:
    """The `db` setting as a child process is handed it: a URL, or an absolute path."""
    return str(db) if is_postgres(db) else str(Path(db).resolve())


def parse_db(text: str) -> Path | str:
    return text if is_postgres(text) else Path(text)


def _coerce(name: str, value: Any, source: str = "") -> Any:
    """Turn a TOML, env or flag value into the type the field wants; a value it cannot
    take is one line naming the setting, where it came from, what was given and what
    is expected (never Python's "invalid literal for int()")."""
    default = next(f.default for f in fields(Settings) if f.name == name)
    where = f" (from {source})" if source else ""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"setting {name!r}{where} must be {expected}; got {value!r}")

    if name == "db" and is_postgres(value):
        return str(value)
    if isinstance(default, Path):
        return Path(str(value)).expanduser()
    if isinstance(default, tuple):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise bad("a list of text values")
        cleaned = tuple(str(item).strip() for item in items if str(item).strip())
        if not cleaned and name not in _MAY_BE_EMPTY:
            raise bad("a list of at least one value")
        if name == "cors_origins":
            try:
                return tuple(_origin(item) for item in cleaned)
            except ValueError as exc:
                raise ConfigError(f"setting {name!r}{where}: {exc}") from None
        return cleaned
    if isinstance(default, bool):
        text = str(value).strip().lower()
        if text not in _TRUE + _FALSE:
            raise bad("true or false")
        return text in _TRUE
    if isinstance(default, int):
        if isinstance(value, bool) or not re.fullmatch(r"\s*[+-]?[0-9]+\s*", str(value)):
            raise bad("a whole number, e.g. 8000")
        return int(value)
    if isinstance(default, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise bad("a number, e.g. 0.5 or 30") from None
    return str(value)


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
    # the settings sit in a [leadrelay] table, or at the top of the file without one
    sections = sorted(key for key, value in data.items() if isinstance(value, dict))
    strays = [key for key in sections if key != "leadrelay"]
    if strays:
        raise ConfigError(
            f"settings file {path} has an unknown section [{strays[0]}]"
            f"{did_you_mean(strays[0], ['leadrelay'])}: the settings go under [leadrelay]"
        )
    table = data.get("leadrelay", data)
    unknown = sorted(set(table) - set(SETTING_NAMES))
    if unknown:
        hints = "".join(did_you_mean(name, SETTING_NAMES) for name in unknown[:1])
        raise ConfigError(f"settings file {path} has unknown settings: {', '.join(unknown)}{hints}")
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
    sources: dict[str, str] = {}  # where each value came from, for the error that names it
    path = find_config_file(config_file, env)
    if path is not None:
        values.update(read_config_file(path))
        sources.update(dict.fromkeys(values, str(path)))
        # a relative db path in the file is relative to the file, as users expect
        db = values.get("db")
        if db is not None and not is_postgres(db) and not Path(str(db)).is_absolute():
            values["db"] = path.parent / str(values["db"])
    for name in SETTING_NAMES:
        env_value = env.get(env_name(name))
        if env_value is not None and env_value != "":
            values[name] = env_value
            sources[name] = env_name(name)
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = value
            sources[name] = "--" + name.replace("_", "-")
    settings = Settings(
        **{name: _coerce(name, value, sources[name]) for name, value in values.items()}
    )
    # absolute from here on: every message names the file exactly, whatever the cwd
    if not is_postgres(settings.db):
        settings = settings.replace(db=Path(settings.db).absolute())
    remember_password(settings.db)
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
    if settings.idempotency_ttl_hours * 3600 < 2 * settings.webhook_tolerance_seconds:
        raise ConfigError(
            f"setting 'idempotency_ttl_hours' ({settings.idempotency_ttl_hours:g} h) must be at "
            "least twice 'webhook_tolerance_seconds' "
            f"({settings.webhook_tolerance_seconds} s): a webhook-timestamp is accepted that far "
            "ahead of the clock and that far behind it, so a signed delivery stays valid for "
            "twice the tolerance, and a webhook-id forgotten sooner could be replayed"
        )
    if settings.max_header_bytes < 1024:
        raise ConfigError("setting 'max_header_bytes' must be at least 1024")
    if settings.max_header_count < 10:
        raise ConfigError("setting 'max_header_count' must be at least 10")
    if settings.request_timeout_seconds <= 0:
        raise ConfigError("setting 'request_timeout_seconds' must be more than 0")
    if settings.auth_failures_per_minute < 0:
        raise ConfigError("setting 'auth_failures_per_minute' must be 0 (no limit) or more")
    if settings.max_connections < 1:
        raise ConfigError("setting 'max_connections' must be at least 1")
