"""How `leadrelay tail` shows events: one Rich line for people, one JSON object for scripts."""

from __future__ import annotations

import enum
import errno
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

from rich.console import Console
from rich.table import Table
from rich.text import Text

from leadrelay.cli.support import print_json

Level = Literal["info", "ok", "warn", "error"]
LEVEL_STYLES: dict[Level, tuple[str, str]] = {
    "info": ("·", "dim"),
    "ok": ("●", "green"),
    "warn": ("▲", "yellow"),
    "error": ("✖", "bold red"),
}
STATUS_STYLES = {
    "new": "blue",
    "contacted": "cyan",
    "qualified": "magenta",
    "converted": "green",
    "lost": "red",
}
# Wider terminals get no more than this: the latency column stays near the text it belongs to.
MAX_LINE = 100
LATENCY_WIDTH = 6
EVENT_WIDTH = len("status.updated")


class StdoutConsole(Console):
    """Rich's console, but a closed pipe (`tail | head`) ends tail as a BrokenPipeError.

    Rich's own answer is SystemExit(1) raised inside tail's task, which asyncio reports
    as a crash instead of letting tail stop cleanly.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")


class StderrConsole(Console):
    """Notes are worth no exit: when nobody reads stderr, tail goes on without them."""

    def on_broken_pipe(self) -> None:
        self.quiet = True


class Origin(enum.Enum):
    """Where an event shown by tail came from."""

    LIVE = "live"  # pushed over the websocket
    STORED = "stored"  # read back from history: --since, or catching up after a reconnect
    MISSED = "missed"  # fetched because a live event's seq showed a hole


@dataclass(frozen=True, slots=True)
class Shown:
    channel: str
    event: str
    data: Any
    received_at: datetime
    origin: Origin


class Output(Protocol):
    def event(self, shown: Shown) -> None: ...

    def note(self, text: str, level: Level = "info") -> None: ...


def short_event(name: str) -> str:
    """`lead.status.updated` → `status.updated`: every event is a lead's."""
    return name.removeprefix("lead.")


def short_channel(channel: str) -> str:
    return channel.removeprefix("private-")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_latency(seconds: float) -> str:
    """`+4ms`, `+1.2s`, `+38s`, `+3m`, `+2h`: short enough for a fixed column."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"+{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"+{seconds:.1f}s"
    if seconds < 60:
        return f"+{seconds:.0f}s"
    if seconds < 3600:
        return f"+{seconds / 60:.0f}m"
    return f"+{seconds / 3600:.0f}h"


def latency_style(seconds: float) -> str:
    # An event that took seconds to arrive means the relay is behind: make it stand out.
    if seconds < 1:
        return "green"
    return "yellow" if seconds < 10 else "bold red"


def describe_change(data: dict[str, Any], *, compact: bool = False) -> Text:
    """What the event did to its lead: `new → contacted by admin`, `new lead → provider 3`.

    `compact` names a provider `p3`, for lines that would otherwise lose the name.
    """
    lead = data.get("lead") if isinstance(data.get("lead"), dict) else {}
    assert isinstance(lead, dict)
    if data.get("type") == "lead.status.updated" or "new_status" in data:
        old, new = str(data.get("old_status")), str(data.get("new_status"))
        text = Text()
        text.append(old, style=STATUS_STYLES.get(old, ""))
        text.append(" → ")
        text.append(new, style="bold " + STATUS_STYLES.get(new, ""))
        changed_by = data.get("changed_by")
        if isinstance(changed_by, dict):
            if changed_by.get("role") == "provider":
                who = "p" if compact else "provider "
                text.append(f" by {who}{changed_by.get('provider_id')}", style="dim")
            else:
                text.append(" by admin", style="dim")
        return text
    provider = lead.get("provider_id")
    what = "new lead" if data.get("seq") == 1 else "reassigned"
    target = f"provider {provider}" if provider is not None else "no provider"
    return Text.assemble((what, "dim"), " → ", (target, "bold"))


class JsonOutput:
    """One JSON object a line on stdout, flushed at once; notes go to stderr."""

    def __init__(self, err: Console | None = None) -> None:
        self._notes = Notes(err)

    def event(self, shown: Shown) -> None:
        received = shown.received_at.astimezone(UTC).isoformat(timespec="milliseconds")
        print_json(
            {
                "channel": shown.channel,
                "event": shown.event,
                "data": shown.data,
                "received_at": received.replace("+00:00", "Z"),
            }
        )

    def note(self, text: str, level: Level = "info") -> None:
        self._notes.note(text, level)


class Notes:
    """Connection state and warnings, on stderr so that stdout stays clean."""

    def __init__(self, err: Console | None = None) -> None:
        self.console = err or StderrConsole(stderr=True, highlight=False)

    def note(self, text: str, level: Level = "info") -> None:
        mark, style = LEVEL_STYLES[level]
        stamp = Text.assemble((datetime.now().strftime("%H:%M:%S"), "dim"), " ", (mark, style))
        if not self.console.is_terminal:
            # a log file: one line a note, whatever its length, so that grep finds it whole
            self.console.print(Text.assemble(stamp, " ", (text, style)), soft_wrap=True)
            return
        # a terminal: long notes wrap under their own text, not under the time
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row(stamp, Text(text, style=style))
        self.console.print(grid)


class RichOutput:
    """One line an event, columns fixed so that a stream of them reads as a table."""

    def __init__(
        self, channels: list[str], out: Console | None = None, err: Console | None = None
    ) -> None:
        self.console = out or StdoutConsole(highlight=False)
        self._notes = Notes(err)
        self._channel_width = max(len(short_channel(c)) for c in channels)
        self._day: date = datetime.now().astimezone().date()

    def note(self, text: str, level: Level = "info") -> None:
        self._notes.note(text, level)

    def event(self, shown: Shown) -> None:
        data = shown.data if isinstance(shown.data, dict) else {}
        occurred = parse_time(data.get("occurred_at"))
        when = (occurred or shown.received_at).astimezone()
        if when.date() != self._day:
            self._day = when.date()
            self.console.print(Text(f"── {when:%a %d %b %Y} ──", style="dim"))
        self.console.print(self.render(shown, when, occurred), soft_wrap=True)
        # Rich buffers nothing here, but a pipe would: keep `tail | grep` live.
        self.console.file.flush()

    def render(self, shown: Shown, when: datetime, occurred: datetime | None) -> Text:
        width = min(self.console.width, MAX_LINE)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{when:%H:%M:%S} ", style="dim" if shown.origin is Origin.STORED else "")
        line.append(short_channel(shown.channel).ljust(self._channel_width) + " ", style="cyan")
        event = short_event(shown.event)
        event_style = "green" if event == "assigned" else "yellow"
        line.append(event.ljust(EVENT_WIDTH) + " ", style=event_style)
        room = width - line.cell_len - LATENCY_WIDTH - 1
        line.append_text(self._middle(shown.data, room))
        line.append(" ")
        line.append_text(self._latency(shown, occurred))
        return line

    def _middle(self, shown_data: Any, room: int) -> Text:
        data = shown_data if isinstance(shown_data, dict) else {}
        lead = data.get("lead")
        if not isinstance(lead, dict):
            # Not one of ours (another app may share the channel): show the raw data.
            raw = Text(json.dumps(shown_data, ensure_ascii=False), style="dim")
            raw.truncate(room, overflow="ellipsis", pad=True)
            return raw
        name = Text.assemble((f"#{lead.get('id')}", "bold"), " ", str(lead.get("name") or ""))
        # The lead id and a few letters of the name stay, whatever the change needs.
        least = len(f"#{lead.get('id')}") + 5
        change = describe_change(data)
        if change.cell_len > room - least - 1:
            change = describe_change(data, compact=True)
        change.truncate(max(room - least - 1, 0), overflow="ellipsis")
        # A fixed name column keeps the changes lined up; a long change takes from the name.
        column = max(12, min(28, room - 26))
        name.truncate(
            max(min(column, room - change.cell_len - 1), 1), overflow="ellipsis", pad=True
        )
        middle = Text.assemble(name, " ", change)
        middle.truncate(room, overflow="ellipsis", pad=True)
        return middle

    def _latency(self, shown: Shown, occurred: datetime | None) -> Text:
        if shown.origin is Origin.STORED:
            return Text("stored".rjust(LATENCY_WIDTH), style="dim")
        if shown.origin is Origin.MISSED:
            return Text("missed".rjust(LATENCY_WIDTH), style="bold yellow")
        if occurred is None:
            return Text(" " * LATENCY_WIDTH)
        seconds = (shown.received_at - occurred).total_seconds()
        return Text(format_latency(seconds).rjust(LATENCY_WIDTH), style=latency_style(seconds))


def make_output(as_json: bool, channels: list[str]) -> Output:
    if as_json:
        return JsonOutput()
    return RichOutput(channels, StdoutConsole(highlight=False, file=sys.stdout))
