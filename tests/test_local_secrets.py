"""The PostgreSQL password, against the other users of the machine and every message.

The review recovered a short password offline from the relay's wake socket name (an
unsalted SHA-256 of the URL, listed to every local user in /proc/net/unix); found that
another user could take that name first and the relay said nothing; saw `?password=` and
libpq's error for a bad percent-escape print the password; and `db copy --to URL` put it in
`ps`.  The wake socket is now named after a random id stored in the database; a name held
by another process is said in a warning; every message masks every form of a password.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadrelay.config import describe_db, mask_secrets, resolved_db
from support.database import rows
from support.serve import Serve, cli

PASSWORD = "s3cret-Pw-9"
WAKE = re.compile(r"@leadrelay-relay-(\S+)")


def _with_password(url: str) -> str:
    """The test server's URL with a password in it (its trust auth ignores it)."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def test_every_form_of_a_password_is_masked() -> None:
    for shown, expected in (
        (f"postgresql://lr:{PASSWORD}@db:5432/leads", "postgresql://lr:***@db:5432/leads"),
        (
            f"postgresql://lr@db/leads?sslmode=require&password={PASSWORD}&x=1",
            "postgresql://lr@db/leads?sslmode=require&password=***&x=1",
        ),
        (f"host=db password={PASSWORD} dbname=leads", "host=db password=*** dbname=leads"),
        (f"host=db password = '{PASSWORD} x' port=5", "host=db password=*** port=5"),
        (f"postgres://lr:{PASSWORD}@db/leads", "postgres://lr:***@db/leads"),
    ):
        assert mask_secrets(shown) == expected
        if "://" in shown:
            assert describe_db(shown) == expected
    assert describe_db("postgresql://lr@db/leads") == "postgresql://lr@db/leads"
    assert describe_db(Path("/var/lib/leadrelay/leadrelay.db")) == "/var/lib/leadrelay/leadrelay.db"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"postgresql://lr:p%zz{PASSWORD}@127.0.0.1:1/x", id="bad percent-escape"),
        pytest.param(f"postgresql://lr@127.0.0.1:1/x?password={PASSWORD}", id="?password="),
        pytest.param(f"postgresql://lr:{PASSWORD}@127.0.0.1:1/x?bogus=1", id="bad parameter"),
    ],
)
def test_cli_errors_never_show_the_password(url: str) -> None:
    failed = cli(url, "leads", "list", check=False)
    assert failed.returncode != 0 and failed.stderr.startswith("error: ")
    assert PASSWORD not in failed.stdout + failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr


def _wake_names() -> set[str]:
    return set(WAKE.findall(Path("/proc/net/unix").read_text()))


def _wait_for_wake_name(name: str, server: Serve) -> None:
    deadline = time.monotonic() + 20
    while name not in _wake_names():
        assert time.monotonic() < deadline, f"the relay never bound {name}:\n{server.logs()}"
        time.sleep(0.05)


def _wake_id(db: Path | str) -> str:
    (row,) = rows(db, "SELECT value FROM settings WHERE key = 'wake_id'")
    value = str(row["value"]).strip('"')
    assert re.fullmatch(r"[0-9a-f]{32}", value), value
    return value


@pytest.mark.postgres
def test_the_wake_socket_is_named_after_a_random_id_not_the_url(pg_url: str) -> None:
    url = _with_password(pg_url)
    cli(url, "init")
    wake_id = _wake_id(pg_url)
    old_name = hashlib.sha256(resolved_db(url).encode()).hexdigest()[:24]
    with Serve(url, relay="process") as server:
        _wait_for_wake_name(wake_id, server)
        assert old_name not in _wake_names()
        assert PASSWORD not in server.logs()
        # nor do the relay's and the lead writer's command lines (`ps`): they get the URL in
        # their environment
        children = server.children("leadrelay")
        assert len(children) == 2
        for pid in children:
            assert PASSWORD.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_each_database_has_a_wake_name_of_its_own(tmp_path: Path) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    for db in (first, second):
        cli(db, "init")
    made = _wake_id(first)
    assert made != _wake_id(second)
    cli(first, "leads", "list")  # the id is made once, then read
    assert _wake_id(first) == made


def test_a_wake_name_taken_by_another_process_is_said_loudly(tmp_path: Path) -> None:
    """Another process (not a relay of this user's leadrelay) holds the name: the relay
    warns, and polls instead."""
    db = tmp_path / "leadrelay.db"
    cli(db, "init")
    squat = (
        "import os, socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
        "s.bind('\\0' + os.environ['NAME']); print('bound', flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", squat],
        env={**os.environ, "NAME": f"leadrelay-relay-{_wake_id(db)}"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "bound\n"
            with Serve(db, relay="process") as server:
                deadline = time.monotonic() + 20
                while "held by another process" not in server.logs():
                    assert time.monotonic() < deadline, server.logs()
                    time.sleep(0.05)
                line = next(ln for ln in server.logs().splitlines() if "another process" in ln)
                assert "WARNING" in line and f"pid {holder.pid}" in line, line
        finally:
            holder.kill()


@pytest.mark.postgres
def test_db_copy_takes_its_target_from_the_environment_or_a_prompt(
    tmp_path: Path, pg_url: str
) -> None:
    db = tmp_path / "leadrelay.db"
    cli(db, "init")
    cli(db, "leads", "create", "--name", "Copied Lead")
    target = _with_password(pg_url)
    copied = cli(db, "db", "copy", env={"LEADRELAY_COPY_TO": target})
    assert "copied" in copied.stderr and PASSWORD not in copied.stdout + copied.stderr
    assert "postgres:***@" in copied.stderr
    # again, by the prompt (hidden input): the target already holds everything
    again = cli(db, "db", "copy", input=target + "\n")
    assert "already holds everything" in again.stderr, again.stderr
    assert PASSWORD not in again.stdout + again.stderr
    assert [row["name"] for row in rows(pg_url, "SELECT name FROM leads")] == ["Copied Lead"]
    assert mask_secrets(target) != target
