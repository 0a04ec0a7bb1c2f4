"""`leadrelay db backup` while `serve` takes leads: restored, it lacks no acknowledged lead."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path

import httpx

from support.serve import Serve, cli, cli_json, point_at_soketi
from support.soketi import Soketi


def test_backup_under_load_restores_every_acknowledged_lead(tmp_path: Path, soketi: Soketi) -> None:
    db = tmp_path / "live.db"
    cli(db, "init")
    point_at_soketi(db, soketi)
    acknowledged: list[tuple[float, int]] = []  # (when the 201 arrived, lead id)
    stop = threading.Event()

    def post_leads(url: str, token: str) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            n = 0
            while not stop.is_set() and n < 5000:
                n += 1
                response = client.post("/api/leads", json={"name": f"Lead {n}"})
                assert response.status_code == 201, response.text
                acknowledged.append((time.monotonic(), response.json()["id"]))

    copy = tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()
    with Serve(db) as server:
        assert server.admin_token is not None
        writers = [
            threading.Thread(target=post_leads, args=(server.url, server.admin_token))
            for _ in range(4)
        ]
        for writer in writers:
            writer.start()
        while len(acknowledged) < 300:
            time.sleep(0.01)
        began = time.monotonic()
        made = cli_json(db, "db", "backup", str(copy))
        time.sleep(0.2)  # intake goes on after the copy
        stop.set()
        for writer in writers:
            writer.join(30)
        after_backup = len(acknowledged)
        assert server.process is not None and server.process.poll() is None

    before = {lead_id for at, lead_id in acknowledged if at < began}
    assert len(before) >= 300 and after_backup > len(before)  # load ran across the backup
    assert made["leads"] >= len(before)
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    assert not list(copy.parent.glob(".*partial"))

    # restore as docs/operations.md says: the daemon stopped, the copy in place, no stale -wal/-shm
    restored = tmp_path / "restored.db"
    shutil.copy2(copy, restored)
    with Serve(restored):
        doctor = cli_json(restored, "doctor")
        failed = [check for check in doctor["checks"] if check["status"] == "fail"]
        assert failed == [], failed
        leads = cli_json(restored, "leads", "list", "--limit", "10000")
    assert before <= {lead["id"] for lead in leads}
    assert len(leads) == made["leads"]
