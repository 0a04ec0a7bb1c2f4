"""forwarded_allow_ips: a trusted proxy's X-Forwarded-For is the client address, no one else's."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from leadrelay.web.webhooks import sign_headers
from support.serve import Serve, cli, cli_json

LIMITED = {"LEADRELAY_RATE_LIMIT_PER_SECOND": "0.01", "LEADRELAY_RATE_LIMIT_BURST": "1"}


def _statuses(server: Serve, secret: str, clients: list[str]) -> list[int]:
    """One signed webhook per forwarded address; signed webhooks are limited per client IP."""
    statuses = []
    for n, address in enumerate(clients):
        body = json.dumps({"name": f"Lead {n}"}).encode()
        headers = {
            **sign_headers(secret, body),
            "Content-Type": "application/json",
            "X-Forwarded-For": address,
        }
        statuses.append(
            httpx.post(f"{server.url}/api/leads", content=body, headers=headers).status_code
        )
    return statuses


def test_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    cli(db, "init")
    secret = cli_json(db, "webhooks", "secret")["secret"]
    clients = ["203.0.113.1", "203.0.113.2", "203.0.113.1"]
    # the default trusts a proxy on 127.0.0.1: two clients, each with its own bucket
    with Serve(db, relay="off", env=LIMITED) as server:
        assert _statuses(server, secret, clients) == [201, 201, 429]
    # trusting no proxy: every request is 127.0.0.1's, whatever the header says
    with Serve(db, relay="off", env={**LIMITED, "LEADRELAY_FORWARDED_ALLOW_IPS": "none"}) as server:
        assert _statuses(server, secret, clients) == [201, 429, 429]
