"""What a run produced: the rows of the table and the raw figures behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    measure: str
    target: str
    leadrelay: float | None = None  # the figure the target is about, None when it did not run
    leadrelay_text: str = ""
    peer_name: str = ""
    peer: float | None = None
    peer_text: str = ""
    ratio_text: str = ""
    met: bool | None = None
    notes: list[str] = field(default_factory=list)  # why a figure is missing
    needs_peer: bool = True

    @property
    def produced(self) -> bool:
        return self.leadrelay is not None and (self.peer is not None or not self.needs_peer)


@dataclass
class RunResults:
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # non-2xx and lost requests, in words
    problems: list[str] = field(default_factory=list)  # measures that could not run


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt_ratio(value: float | None, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.2f}×{suffix}"


def one_line(text: str, limit: int = 400) -> str:
    """A note for a table: whitespace collapsed, a long server log cut short."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
