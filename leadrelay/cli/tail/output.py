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
from leadrelay.cli.text import plain, visible

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
MIN_NAME = 8  # the lead's column on a terminal: `#12 Ada…` at least, folded past it


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
        old, new = visible(data.get("old_status")), visible(data.get("new_status"))
        text = Text()
        text.append(old, style=STATUS_STYLES.get(old, ""))
        text.append(" → ")
        text.append(new, style="bold " + STATUS_STYLES.get(new, ""))
        changed_by = data.get("changed_by")
        if isinstance(changed_by, dict):
            if changed_by.get("role") == "provider":
                who = "p" if compact else "provider "
                text.append(f" by {who}{visible(changed_by.get('provider_id'))}", style="dim")
            else:
                text.append(" by admin", style="dim")
        return text
    provider = lead.get("provider_id")
    what = "new lead" if data.get("seq") == 1 else "reassigned"
    target = f"provider {visible(provider)}" if provider is not None else "no provider"
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
            self.console.print(Text.assemble(stamp, " ", plain(text, style)), soft_wrap=True)
            return
        # a terminal: long notes wrap under their own text, not under the time
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row(stamp, plain(text, style))
        self.console.print(grid)


class RichOutput:
    """One row an event, columns fixed so that a stream of them reads as a table.

    Nothing is ever cut: on a terminal a long name or change wraps inside its own column
    (the row takes two lines); in a pipe or a file each event is one whole line, so that
    grep and scripts see every character.
    """

    def __init__(
        self, channels: list[str], out: Console | None = None, err: Console | None = None
    ) -> None:
        self.console = out or StdoutConsole(highlight=False)
        self._notes = Notes(err)
        self._channel_width = max(len(visible(short_channel(c))) for c in channels)
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
        if self.console.is_terminal:
            self.console.print(self.row(shown, when, occurred))
        else:
            self.console.print(self.line(shown, when, occurred), soft_wrap=True)
        # Rich buffers nothing here, but a pipe would: keep `tail | grep` live.
        self.console.file.flush()

    def _widths(self, width: int) -> tuple[int, int]:
        """The name column's width and the change column's, in a line `width` wide."""
        head = 8 + 1 + self._channel_width + 1 + EVENT_WIDTH + 1
        room = max(width - head - LATENCY_WIDTH - 1, 14)
        name = max(12, min(28, room - 22))  # beside `new → contacted by p3` at 80 columns
        return name, max(room - name - 1, 1)

    def _head(self, shown: Shown, when: datetime) -> list[Text]:
        event = visible(short_event(shown.event))
        return [
            Text(f"{when:%H:%M:%S}", style="dim" if shown.origin is Origin.STORED else ""),
            plain(short_channel(shown.channel), "cyan"),
            Text(event, style="green" if event == "assigned" else "yellow"),
        ]

    def row(self, shown: Shown, when: datetime, occurred: datetime | None) -> Table:
        """For a terminal: a grid row; long text folds within its column."""
        name_width, change_width = self._widths(min(self.console.width, MAX_LINE))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, width=self._channel_width)
        grid.add_column(no_wrap=True, width=EVENT_WIDTH)
        # a long change says `p3` rather than leave the name fewer than 12 columns; what it
        # still lacks it takes from the name's column, down to a few letters
        lead, change = self._middle(shown.data, change_width + name_width - 12)
        taken = min(max(change.cell_len - change_width, 0), name_width - MIN_NAME)
        name_width, change_width = name_width - taken, change_width + taken
        if lead is None:  # not ours: the raw data takes both columns
            grid.add_column(overflow="fold", width=name_width + 1 + change_width)
            middle = [change]
        else:
            grid.add_column(overflow="fold", width=name_width)
            grid.add_column(overflow="fold", width=change_width)
            middle = [lead, change]
        grid.add_column(no_wrap=True, width=LATENCY_WIDTH, justify="right")
        grid.add_row(*self._head(shown, when), *middle, self._latency(shown, occurred))
        return grid

    def line(self, shown: Shown, when: datetime, occurred: datetime | None) -> Text:
        """For a pipe or a file: one whole line, padded into the columns where it fits."""
        name_width, _ = self._widths(min(self.console.width, MAX_LINE))
        time, channel, event = self._head(shown, when)
        channel.pad_right(self._channel_width - channel.cell_len)
        event.pad_right(EVENT_WIDTH - event.cell_len)
        lead, change = self._middle(shown.data, None)
        line = Text.assemble(time, " ", channel, " ", event, " ")
        if lead is not None:
            lead.pad_right(name_width - lead.cell_len)
            line.append_text(lead)
            line.append(" ")
        return line.append_text(Text.assemble(change, " ", self._latency(shown, occurred)))

    def _middle(self, shown_data: Any, change_width: int | None) -> tuple[Text | None, Text]:
        """The lead (`#12 name`: None for data not ours) and what happened to it; the change
        says `p3` for `provider 3` where it would not fit in `change_width`."""
        data = shown_data if isinstance(shown_data, dict) else {}
        lead = data.get("lead")
        if not isinstance(lead, dict):
            # Not one of ours (another app may share the channel): show the raw data.
            return None, plain(json.dumps(shown_data, ensure_ascii=False), "dim")
        name = Text.assemble(
            plain(f"#{lead.get('id')}", "bold"), " ", plain(lead.get("name") or "")
        )
        change = describe_change(data)
        if change_width is not None and change.cell_len > change_width:
            change = describe_change(data, compact=True)
        return name, change

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
