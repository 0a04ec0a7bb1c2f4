"""What a new user meets in the first hour: prompts, JSON on failure, stops, ports, tables."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from support.serve import Serve, await_group_gone, children_of, cli, cli_json, group_members
from support.soketi import free_port

SECRET = "typed-secret-0123456789abcdef"
# a start or a graceful stop takes a second here, and many more beside a full suite and two
# CPU hogs: each step waits for what it needs, this long at most
START_SECONDS = STOP_SECONDS = 60.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "first.db"
    with Serve(path, relay="off"):  # the first start creates the database
        pass
    return path


def read_until(fd: int, wanted: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_pusher_set_secret_dash_on_a_terminal_prompts_without_echo(db: Path) -> None:
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "leadrelay", "pusher", "set", "--secret", "-", "--db", str(db)]
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    try:
        prompt = read_until(leader, b":", 15)
        assert b"secret" in prompt.lower(), prompt
        os.write(leader, SECRET.encode() + b"\n")
        rest = read_until(leader, b"\x00never", 5)
        assert process.wait(15) == 0, prompt + rest
    finally:
        os.close(leader)
        process.kill()
        process.wait()  # reaped, or a later test is warned of it still running
    assert SECRET.encode() not in prompt + rest, "the secret was echoed to the terminal"
    stored = sqlite3.connect(db).execute("SELECT value FROM settings WHERE key = 'pusher'")
    assert json.loads(stored.fetchone()[0])["secret"] == SECRET


def test_pusher_set_secret_dash_reads_a_pipe_as_before(db: Path) -> None:
    cli(db, "pusher", "set", "--secret", "-", input=SECRET + "\n")
    stored = sqlite3.connect(db).execute("SELECT value FROM settings WHERE key = 'pusher'")
    assert json.loads(stored.fetchone()[0])["secret"] == SECRET


def test_test_connection_json_prints_an_object_on_failure(db: Path) -> None:
    cli(db, "pusher", "set", "--app-id", "1", "--key", "k", "--secret", SECRET)
    cli(db, "pusher", "set", "--host", "127.0.0.1", "--port", str(free_port()), "--scheme", "http")
    result = cli(db, "test-connection", "--json", check=False)
    assert result.returncode == 11, result
    body = json.loads(result.stdout)  # one JSON document, nothing else
    assert body["ok"] is False
    assert body["cause"] == "refused"
    assert body["exit_code"] == 11
    assert "127.0.0.1" in body["message"]
    assert SECRET not in result.stdout + result.stderr


def test_test_connection_json_not_configured_is_an_object_too(db: Path) -> None:
    result = cli(db, "test-connection", "--json", check=False)
    body = json.loads(result.stdout)
    assert body == {
        "ok": False,
        "cause": "not_configured",
        "message": body["message"],
        "exit_code": result.returncode,
    }
    assert result.returncode == 3


def test_test_connection_json_no_database_is_an_object_too(tmp_path: Path) -> None:
    result = cli(tmp_path / "missing.db", "test-connection", "--json", check=False)
    assert result.returncode == 2
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["cause"] == "no_database" and body["exit_code"] == 2
    assert str(tmp_path / "missing.db") in body["message"]


def wait_for_relay_state(db: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            if conn.execute("SELECT 1 FROM settings WHERE key = 'relay_state'").fetchone():
                return
        time.sleep(0.05)
    raise AssertionError("the relay process never started")


def test_serve_ctrl_c_exits_0(tmp_path: Path) -> None:
    serve = Serve(tmp_path / "leadrelay.db").start()
    try:
        assert serve.process is not None
        wait_for_relay_state(serve.db)  # the relay child is up too: Ctrl-C reaches it
        assert f"running on http://127.0.0.1:{serve.port}" in serve.logs()
        os.killpg(serve.process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        assert serve.process.wait(STOP_SECONDS) == 0, serve.logs()
        assert "Traceback" not in serve.logs(), serve.logs()
    finally:
        serve.kill()


def end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL what is left of the daemon's group and reap the daemon: a test that failed
    leaves nothing running for the next one."""
    if process.returncode is None:  # unreaped: its pid, and so its group, are still ours
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for pid in group_members(process.pid):  # children that outlived it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_serve_ctrl_c_while_its_children_start_exits_0_without_a_traceback(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "leadrelay", "serve", "--db", str(tmp_path / "lr.db")]
    command += ["--port", str(free_port())]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "LEADRELAY_RELAY": "process"},
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            while not children_of(process.pid, "leadrelay.relay.runner"):
                assert time.monotonic() < deadline, "the relay child never started"
                time.sleep(0.002)
            os.killpg(process.pid, signal.SIGINT)  # the relay child is still starting up
            code = process.wait(STOP_SECONDS)
            left = await_group_gone(process.pid)  # its children keep its group if they outlive it
        finally:
            end_group(process)
        log.seek(0)
        logs = log.read()
    assert code == 0, logs
    assert left == [], f"still running after the daemon's exit: {left}"
    assert "Traceback" not in logs and "KeyboardInterrupt" not in logs, logs
    assert "ERROR" not in logs, logs  # no child died of the Ctrl-C ("exited (-2)")


@pytest.mark.parametrize("after_ms", [0, 40, 80, 120])
def test_serve_ctrl_c_while_it_starts_up_ends_quietly(tmp_path: Path, after_ms: int) -> None:
    """Ctrl-C between opening the database and uvicorn taking the signals over (the app's
    import, the socket, the lifespan's start): an interrupted start (130) or a clean stop
    (0), never a traceback, and no process left behind."""
    db = tmp_path / "lr.db"
    command = [sys.executable, "-m", "leadrelay", "serve", "--db", str(db)]
    command += ["--port", str(free_port())]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            while not db.exists():  # first_start has opened the database
                assert time.monotonic() < deadline, "the database was never created"
                time.sleep(0.001)
            time.sleep(after_ms / 1000)
            os.killpg(process.pid, signal.SIGINT)
            code = process.wait(STOP_SECONDS)
            left = await_group_gone(process.pid)  # its children keep its group if they outlive it
        finally:
            end_group(process)
        log.seek(0)
        logs = log.read()
    assert code in (0, 130), logs
    assert "Traceback" not in logs and "KeyboardInterrupt" not in logs, logs
    assert "ERROR" not in logs, logs
    assert left == []


def test_serve_port_in_use_says_so_in_one_line_and_starts_nothing(db: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "leadrelay", "serve", "--db", str(db), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "LEADRELAY_RELAY": "process"},
        )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(port) in lines[0] and "--port" in lines[0] and "in use" in lines[0]
    # the relay child writes its state when it starts; nothing started, nothing written
    row = sqlite3.connect(db).execute("SELECT 1 FROM settings WHERE key = 'relay_state'")
    assert row.fetchone() is None


def test_tables_are_not_cut_when_stdout_is_not_a_terminal(db: Path) -> None:
    email = "a.very.long.address.for.a.lead.who.came.in.from.a.crm@example-company.com"
    cli(db, "leads", "create", "--name", "Ada Lovelace", "--email", email, "--source", "crm")
    out = cli(db, "leads", "list").stdout
    assert email in out, out
    updated_at = cli_json(db, "leads", "list")[0]["updated_at"]
    assert updated_at in out


def test_database_errors_name_its_absolute_path(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "leadrelay", "leads", "list", "--db", "missing.db"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert result.returncode != 0
    assert str(tmp_path / "missing.db") in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
