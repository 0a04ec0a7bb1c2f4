"""What the CLI prints of untrusted text: as text, with control characters shown, never
obeyed, never read as Rich markup, never cut where nobody reads it on a terminal.

A CRM can send any text as a lead's fields; a provider's name, a database path and an error
text can hold anything too.  The review found `Normal [/]` crashing `leads list` with a
MarkupError, `[red]` hiding the end of a provider's name, and escape sequences in `leads
show` setting the window title and clearing the screen.  The real CLI is run here as a user
runs it (a pipe: no colours, so no escape sequence of Rich's own either), and a hypothesis
fuzz drives every printer with arbitrary Unicode, brackets and control characters.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from leadrelay.cli import support
from leadrelay.cli.tail.output import Notes, Origin, RichOutput, Shown
from leadrelay.cli.text import ESCAPES, visible
from support.serve import cli, cli_json

HOSTILE = {
    "markup close": "Normal [/]",
    "markup tags": "[VIP] Smith & Co [red]",
    "title and clear": "Eve\x1b]0;pwned\x07\x1b[2J\x1b[H",
    "hyperlink": "[link=https://evil.example]click me[/link]",
    "8-bit CSI": "csi\x9b31m",
    "right-to-left override": "abc\u202edcba",
    "newline": "two\nlines\r\tand a tab",
}
OBEYED = set(map(chr, ESCAPES)) - {"\n"}  # what a terminal would act on; lines may break


def _obeyed(output: str) -> set[str]:
    return {char for char in output if char in OBEYED}


def test_visible_shows_control_characters_as_escapes() -> None:
    assert (
        visible("a\x1b[2Jb\x07\n\t\x9b\u202e\u2028") == "a\\x1b[2Jb\\x07\\n\\t\\x9b\\u202e\\u2028"
    )
    assert visible("Zoë 👩‍💻 [red]") == "Zoë 👩‍💻 [red]"  # text and emoji joiners stay as they are


def test_leads_and_providers_print_hostile_text_as_text(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    cli(db, "init")
    ids = [
        cli_json(db, "leads", "create", "--name", name, "--source", name)["id"]
        for name in HOSTILE.values()
    ]
    listed = cli(db, "leads", "list")
    for name in HOSTILE.values():
        assert visible(name) in listed.stdout
    for lead_id, name in zip(ids, HOSTILE.values(), strict=True):
        shown = cli(db, "leads", "show", str(lead_id))
        assert shown.stdout.count(visible(name)) == 2, shown.stdout  # name and source
        assert _obeyed(shown.stdout + shown.stderr) == set()
    added = cli(db, "providers", "add", HOSTILE["markup tags"])
    assert "[VIP] Smith & Co [red]" in added.stdout
    providers = cli(db, "providers", "list")
    assert "[VIP] Smith & Co [red]" in providers.stdout
    assert _obeyed(listed.stdout + listed.stderr + providers.stdout) == set()
    # --json carries the same values, with what a terminal obeys escaped (still JSON)
    raw = cli(db, "leads", "show", str(ids[4]), "--json").stdout
    assert "\x9b" not in raw and json.loads(raw)["name"] == HOSTILE["8-bit CSI"]


def test_errors_show_control_characters_as_escapes(tmp_path: Path) -> None:
    missing = tmp_path / "\x1b]0;pwned\x07" / "leadrelay.db"
    failed = cli(missing, "leads", "list", check=False)
    assert failed.returncode != 0 and failed.stderr.startswith("error: no database at ")
    assert "\\x1b]0;pwned\\x07" in failed.stderr and _obeyed(failed.stderr) == set()


def test_say_in_a_pipe_is_one_whole_line(tmp_path: Path) -> None:
    """Rich wrapped a note at 80 columns when stderr was not a terminal."""
    deep = tmp_path / ("a-folder-with-a-long-name-" * 4)
    deep.mkdir()
    done = cli(deep / "leadrelay.db", "init")
    line = next(line for line in done.stderr.splitlines() if "created the database" in line)
    assert line.endswith("leadrelay.db (mode 0600)") and len(line) > 120


def _event(name: str, provider: int = 3, ago: float = 0.04) -> dict[str, Any]:
    occurred = datetime.now(UTC) - timedelta(seconds=ago)
    return {
        "type": "lead.status.updated",
        "seq": 2,
        "occurred_at": occurred.isoformat(),
        "lead": {"id": 12, "name": name, "provider_id": provider},
        "old_status": "new",
        "new_status": "contacted",
        "changed_by": {"role": "provider", "provider_id": provider},
    }


def test_tail_provider_shows_the_whole_name_in_a_pipe() -> None:
    """`tail --provider` cut names to 9 characters at 80 columns; a pipe is never cut."""
    name = "Bartholomew Fitzgerald-Montgomery of Upper Wickham"
    buffer = io.StringIO()
    output = RichOutput(["private-provider.3"], Console(file=buffer, width=80))
    output.event(
        Shown(
            "private-provider.3",
            "lead.status.updated",
            _event(name),
            datetime.now(UTC),
            Origin.LIVE,
        )
    )
    (line,) = buffer.getvalue().splitlines()
    assert f"#12 {name} new → contacted by provider 3" in line and line.endswith("+40ms")


# --- the fuzz: every printer, arbitrary text ----------------------------------------------

PIECES = [*HOSTILE.values(), "[", "]", "[/", "[bold]", ":smile:", "\\", "\x00", "\x7f", "\u0085"]
hostile = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(PIECES)), max_size=5).map(
    "".join
)
FUZZ = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _captured(print_it: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, clear=False) as env,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        env.pop("COLUMNS", None)
        with contextlib.suppress(typer.Exit):
            print_it()
    return out.getvalue(), err.getvalue()


@FUZZ
@given(values=st.lists(hostile, min_size=1, max_size=3), title=hostile)
def test_fuzz_tables_print_every_value_as_text(values: list[str], title: str) -> None:
    out, _ = _captured(lambda: support.print_table(title, ["field", "value"], [values[:2]]))
    out += _captured(lambda: support.print_fields(dict(enumerate(values))))[0]
    assert _obeyed(out) == set()
    for value in values:
        assert visible(value) in out


@FUZZ
@given(message=hostile)
def test_fuzz_say_and_fail_print_one_whole_line(message: str) -> None:
    _, said = _captured(lambda: support.say(message, "yellow"))
    _, failed = _captured(lambda: support.fail(message))
    assert said == visible(message) + "\n"
    assert failed == f"error: {visible(message)}\n"


@FUZZ
@given(name=hostile, status=hostile, channel=hostile, other=hostile, terminal=st.booleans())
def test_fuzz_tail_prints_every_event_as_text(
    name: str, status: str, channel: str, other: str, terminal: bool
) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=terminal, color_system=None)
    output = RichOutput([channel or "admin"], console, err=console)
    data = {**_event(name), "new_status": status}
    output.event(Shown(channel, "lead.status.updated", data, datetime.now(UTC), Origin.LIVE))
    output.event(Shown(channel, other, {"raw": other}, datetime.now(UTC), Origin.STORED))
    output.note(other, "warn")
    Notes(console).note(name)
    printed = buffer.getvalue()
    assert _obeyed(printed) == set()
    if not terminal:  # one whole line each (and a day's line, past midnight)
        assert visible(name) in printed and visible(status) in printed
        assert len([ln for ln in printed.splitlines() if not ln.startswith("── ")]) == 4
