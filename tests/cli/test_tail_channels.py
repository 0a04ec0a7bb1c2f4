"""`leadrelay tail --channel NAME`: any channel, here those an app triggers on through the
daemon's Pusher API, live from a real soketi and, with --since, from the database first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pusher
import pytest
from test_tail import TailProcess, start_tail, tails, wait_delivered

from support.serve import Serve, cli, point_at_soketi
from support.soketi import Soketi

pytestmark = [pytest.mark.timeout(60), pytest.mark.soketi]
__all__ = ["tails"]  # the fixture, for these tests


@pytest.fixture
def app_daemon(tmp_path: Path, soketi: Soketi) -> Iterator[tuple[Serve, pusher.Pusher]]:
    serve = Serve(tmp_path / "tail.db", env={"LEADRELAY_PUSHER_API": "true"}).start()
    try:
        point_at_soketi(serve.db, soketi)
        app = pusher.Pusher(
            app_id=soketi.app_id,
            key=soketi.key,
            secret=soketi.secret,
            host="127.0.0.1",
            port=serve.port,
            ssl=False,
        )
        yield serve, app
    finally:
        serve.kill()


def test_tail_channel_shows_stored_then_live_events_of_any_channel(
    app_daemon: tuple[Serve, pusher.Pusher], tails: list[TailProcess]
) -> None:
    serve, app = app_daemon
    app.trigger("orders", "order.placed", {"n": 1})
    app.trigger("elsewhere", "not.followed", {"n": 0})
    app.trigger("private-orders", "order.paid", "plain text, not JSON")
    wait_delivered(serve.db, 3)
    tail = start_tail(
        tails,
        serve.db,
        *("--channel", "orders", "--channel", "private-orders", "--json", "--since", "1h"),
    )
    tail.wait_stderr("2 stored events since")
    app.trigger(["orders", "elsewhere"], "order.shipped", {"n": 2})
    lines = tail.wait_lines(3)
    tail.stop()
    shown = [(e["channel"], e["event"], e["data"]) for e in tail.events]
    assert shown[:2] == [
        ("orders", "order.placed", {"n": 1}),
        ("private-orders", "order.paid", "plain text, not JSON"),
    ]
    assert ("orders", "order.shipped", {"n": 2}) in shown[2:], lines
    assert all(channel != "elsewhere" for channel, _, _ in shown)


def test_tail_channel_refuses_what_it_cannot_follow(tmp_path: Path) -> None:
    db = tmp_path / "refuse.db"
    for args, words in (
        (("--channel", "presence-room"), "cannot follow the presence channel"),
        (("--channel", "bad name"), "--channel takes a Pusher channel name"),
        (("--channel", "orders", "--provider", "1"), "goes without --provider"),
    ):
        done = cli(db, "tail", *args, check=False)
        assert done.returncode == 2, done
        assert words in done.stderr and "Traceback" not in done.stderr
