"""The Pusher settings stored in the database: checked, masked when shown, seeded from env."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from leadrelay import events
from leadrelay.errors import ValidationFailed
from leadrelay.store.base import Store, Tx

SETTING_KEY = "pusher"
CLUSTER = re.compile(r"^[a-z0-9-]{1,40}$")
HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9a-fA-F:]+\]$")


@dataclass(frozen=True)
class PusherConfig:
    app_id: str = ""
    key: str = ""
    secret: str = ""
    cluster: str = "mt1"
    host: str | None = None  # a self-hosted Pusher-compatible server (soketi)
    port: int | None = None
    scheme: str = "https"
    enabled: bool = False
    # base64 of 32 bytes: the key of Pusher's end-to-end encrypted channels (encrypted_channels)
    encryption_master_key: str = ""

    @property
    def complete(self) -> bool:
        return bool(self.app_id and self.key and self.secret)

    @property
    def server_host(self) -> str:
        return self.host or f"api-{self.cluster}.pusher.com"

    @property
    def ws_host(self) -> str:
        return self.host or f"ws-{self.cluster}.pusher.com"

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def server_port(self) -> int:
        return self.port or (443 if self.tls else 80)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.server_host}:{self.server_port}"

    @property
    def server(self) -> str:
        """Which server is in force, in words: Pusher's own (by cluster) or a self-hosted one."""
        if self.host:
            return f"self-hosted: {self.base_url}"
        return f"Pusher, cluster {self.cluster}: {self.base_url}"

    def masked(self) -> dict[str, Any]:
        """What may be shown: the secret reduced to a hint of its last characters."""
        shown = asdict(self)
        shown["secret"] = mask(self.secret)
        shown["encryption_master_key"] = mask(self.encryption_master_key)
        return shown

    @property
    def master_key(self) -> bytes | None:
        """The encryption master key's 32 bytes, or None when none is set."""
        return base64.b64decode(self.encryption_master_key) if self.encryption_master_key else None

    def __repr__(self) -> str:  # never let the secret reach a log or a traceback
        return f"PusherConfig({self.masked()!r})"


MASK = "••••"


def mask(secret: str) -> str:
    if not secret:
        return ""
    return MASK + secret[-2:] if len(secret) >= 12 else MASK


def kept_secret(sent: str, stored: str) -> bool:
    """A settings form sends back what it was shown: the mask means "keep the stored one".
    A mask of some other secret is refused rather than stored as the secret."""
    if not sent.startswith(MASK):
        return False
    if sent != mask(stored):
        raise ValidationFailed(
            "send the Pusher secret in full, or leave it out to keep the stored one",
            code="invalid_secret",
        )
    return True


def check(config: PusherConfig) -> PusherConfig:
    if config.app_id and not config.app_id.isdigit():
        raise ValidationFailed("the Pusher app id must be all digits", code="invalid_app_id")
    if not CLUSTER.fullmatch(config.cluster):
        raise ValidationFailed("the cluster must look like 'mt1' or 'eu'", code="invalid_cluster")
    if config.host is not None and not HOST.fullmatch(config.host):
        raise ValidationFailed(f"{config.host!r} is not a valid host name", code="invalid_host")
    if config.port is not None and not 1 <= config.port <= 65535:
        raise ValidationFailed("the port must be 1 to 65535", code="invalid_port")
    if config.scheme not in ("http", "https"):
        raise ValidationFailed("the scheme must be 'http' or 'https'", code="invalid_scheme")
    for name in ("key", "secret"):
        value = getattr(config, name)
        if len(value) > 200 or any(ch.isspace() for ch in value):
            raise ValidationFailed(f"the Pusher {name} looks wrong", code=f"invalid_{name}")
    if config.encryption_master_key:
        check_master_key(config.encryption_master_key)
    if config.enabled and not config.complete:
        raise ValidationFailed(
            "set the app id, key and secret before enabling Pusher", code="pusher_incomplete"
        )
    return config


def check_master_key(text: str) -> str:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValidationFailed(
            "the encryption master key must be 32 random bytes in base64 "
            "(make one with: openssl rand -base64 32)",
            code="invalid_encryption_master_key",
        )
    return text


FIELDS = (
    "app_id",
    "key",
    "secret",
    "cluster",
    "host",
    "port",
    "scheme",
    "enabled",
    "encryption_master_key",
)


def from_mapping(data: Mapping[str, Any], base: PusherConfig | None = None) -> PusherConfig:
    """Apply the given fields (None, absent, or the secret's mask keeps the old value)."""
    base = base or PusherConfig()
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationFailed(
            f"unknown Pusher settings: {', '.join(unknown)}", code="unknown_field"
        )
    changes: dict[str, Any] = {}
    for name in FIELDS:
        if name not in data or data[name] is None:
            continue
        value = data[name]
        if name == "enabled":
            if not isinstance(value, bool):
                raise ValidationFailed("'enabled' must be true or false", code="invalid_field")
        elif name == "port":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationFailed("'port' must be a number", code="invalid_field")
        elif not isinstance(value, str):
            raise ValidationFailed(f"'{name}' must be a string", code="invalid_field")
        elif name in ("secret", "encryption_master_key") and kept_secret(
            value, getattr(base, name)
        ):
            continue
        changes[name] = value
    # Where the server is. A cluster without a host, or an empty host, means Pusher's own
    # host: the port and scheme a self-hosted server had must not follow it there (port
    # 6001 and http on api-eu.pusher.com was the first stumble moving from soketi).
    if changes.get("host") == "" or ("cluster" in changes and "host" not in changes):
        changes["host"] = None
        changes.setdefault("port", None)
        changes.setdefault("scheme", "https")
    return check(replace(base, **changes))


def from_row(value: Any) -> PusherConfig:
    if not isinstance(value, dict):
        return PusherConfig()
    return PusherConfig(**{k: v for k, v in value.items() if k in FIELDS})


async def load(store: Store) -> PusherConfig:
    return from_row(await store.get_setting(SETTING_KEY))


async def update(store: Store, data: Mapping[str, Any]) -> PusherConfig:
    """Change the stored settings in one transaction (read, merge, check, write)."""

    def apply(tx: Tx) -> PusherConfig:
        config = from_mapping(data, from_row(tx.get_setting(SETTING_KEY)))
        tx.put_setting(SETTING_KEY, asdict(config), events.now_iso())
        return config

    return await store.write(apply)


async def seed_from_env(store: Store, env: Mapping[str, str]) -> bool:
    """On first start, take Laravel's PUSHER_APP_* variables; never overwrite stored ones."""
    values = {
        "app_id": env.get("PUSHER_APP_ID"),
        "key": env.get("PUSHER_APP_KEY"),
        "secret": env.get("PUSHER_APP_SECRET"),
        "cluster": env.get("PUSHER_APP_CLUSTER") or None,
        "host": env.get("PUSHER_HOST") or None,
        "scheme": env.get("PUSHER_SCHEME") or None,
    }
    port = env.get("PUSHER_PORT")
    if not (values["app_id"] and values["key"] and values["secret"]):
        return False
    data: dict[str, Any] = {k: v for k, v in values.items() if v}
    if port and port.isdigit():
        data["port"] = int(port)
    data["enabled"] = True

    def seed(tx: Tx) -> bool:
        if tx.get_setting(SETTING_KEY) is not None:
            return False
        config = from_mapping(data)
        tx.put_setting(SETTING_KEY, asdict(config), events.now_iso())
        return True

    return await store.write(seed)
