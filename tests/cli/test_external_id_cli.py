"""The CLI by the CRM's id for a lead (`--external-id`), and `webhooks sign` for the status
webhook, checked against a real `leadrelay serve`, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.serve import Serve, cli, cli_json

pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def daemon(module_db: Path | str) -> Iterator[Serve]:
    with Serve(module_db, relay="off") as server:
        yield server


def test_leads_show_and_status_by_external_id(daemon: Serve) -> None:
    db = daemon.db
    lead = cli_json(db, "leads", "create", "--name", "Ada", "--external-id", "crm-9")
    again = cli_json(db, "leads", "create", "--name", "Other", "--external-id", "crm-9")
    assert again["id"] == lead["id"]  # a known external_id shows that lead, creates none
    shown = cli_json(db, "leads", "show", "--external-id", "crm-9")
    assert (shown["id"], shown["external_id"]) == (lead["id"], "crm-9")
    changed = cli_json(db, "leads", "status", "--external-id", "crm-9", "contacted")
    assert (changed["id"], changed["status"]) == (lead["id"], "contacted")
    by_id = cli_json(db, "leads", "status", str(lead["id"]), "qualified")
    assert by_id["status"] == "qualified"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("leads", "show", "--external-id", "nope"), "no lead with external_id 'nope'"),
        (("leads", "status", "--external-id", "nope", "lost"), "no lead with external_id"),
        (("leads", "show"), "give the lead's id or --external-id"),
        (("leads", "show", "1", "--external-id", "crm-9"), "give the lead's id or --external-id"),
        (("leads", "status", "--external-id", "crm-9", "1", "lost"), "only the new status"),
        (("leads", "status", "lost"), "give the lead's id and the new status"),
        (("leads", "status", "--external-id", "crm-9", "won"), "unknown status 'won'"),
    ],
)
def test_external_id_mistakes_are_one_line(daemon: Serve, args: tuple[str, ...], says: str) -> None:
    result = cli(daemon.db, *args, check=False)
    assert result.returncode == 1, result.stdout
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_webhooks_sign_signs_a_status_webhook(daemon: Serve, tmp_path: Path) -> None:
    cli_json(daemon.db, "leads", "create", "--name", "Bo", "--external-id", "crm-10")
    body = tmp_path / "status.json"
    body.write_bytes(json.dumps({"external_id": "crm-10", "status": "contacted"}).encode())
    lines = cli(daemon.db, "webhooks", "sign", str(body)).stdout.splitlines()
    # the lines are curl's -H flags: -H 'name: value'
    assert all(line.startswith("-H '") and line.endswith("'") for line in lines)
    headers = dict(line[4:-1].split(": ", 1) for line in lines)
    sent = httpx.post(
        f"{daemon.url}/api/leads/status",
        content=body.read_bytes(),
        headers={"Content-Type": "application/json", **headers},
    )
    assert sent.status_code == 200, sent.text
    answer = sent.json()
    assert (answer["applied"], answer["lead"]["status"]) == (True, "contacted")
    shown = httpx.get(
        f"{daemon.url}/api/admin/leads", params={"external_id": "crm-10"}, headers=daemon.auth()
    )
    assert shown.json()["leads"][0]["status"] == "contacted"
