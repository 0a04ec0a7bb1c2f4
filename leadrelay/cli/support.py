"""What every CLI command shares: options, settings, running a coroutine, printing results."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from leadrelay.cli.text import ESCAPES, plain, visible
from leadrelay.config import (
    Settings,
    describe_db,
    is_postgres,
    load_settings,
    mask_secrets,
    unknown_env_warnings,
)
from leadrelay.errors import LeadrelayError, Unavailable

if TYPE_CHECKING:
    from leadrelay.store.base import Store

T = TypeVar("T")

# `leadrelay --db PATH <command>`: the root callback records it here for every command that
# is not given a --db of its own (a command's own --db wins)
_ROOT_DB: ContextVar[Path | str | None] = ContextVar("leadrelay_root_db", default=None)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=(
            "SQLite database file, or postgresql://user@host:5432/name "
            "[env: LEADRELAY_DB; default: from leadrelay.toml]"
        ),
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="settings file [env: LEADRELAY_CONFIG]", show_default=False),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="print JSON for scripts, nothing else on stdout")
]


def command_group(help_text: str, **options: Any) -> typer.Typer:
    """A Typer app with plain help: Rich-formatted help costs ~70 ms per `--help`, which
    would put `leadrelay --help` over its 150 ms budget; the data output stays Rich."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        **options,
    )


def set_root_db(db: Path | str | None) -> None:
    _ROOT_DB.set(db)


def settings_for(db: Path | str | None, config: Path | None = None, **flags: Any) -> Settings:
    for warning in unknown_env_warnings(os.environ):
        typer.echo(f"warning: {visible(warning)}", err=True)
    try:
        return load_settings({"db": db or _ROOT_DB.get(), **flags}, config_file=config)
    except LeadrelayError as exc:
        fail(str(exc), getattr(exc, "exit_code", 2))


def fail(message: str, code: int = 1) -> NoReturn:
    """One actionable line on stderr and a non-zero exit; never a traceback (and never a
    control character a database or server error text carried: see text.py)."""
    typer.echo(f"error: {visible(mask_secrets(message))}", err=True)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T], *, fast_loop: bool = False) -> T:
    """Run a command's coroutine; LeadrelayError becomes one line and its exit code."""
    import asyncio  # here, not at the top: `leadrelay --help` never needs it

    try:
        if fast_loop:
            import uvloop

            return uvloop.run(coro)
        return asyncio.run(coro)
    except LeadrelayError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The database, with commits waking a running relay at once."""
    from leadrelay.relay.wake import Waker, wake_address
    from leadrelay.store import open_store as open_database

    if not is_postgres(settings.db) and not Path(settings.db).exists():
        fail(missing_database(Path(settings.db)), 2)
    try:
        store = await open_database(settings.db)
    except Unavailable as exc:
        raise _at_path(exc, settings.db) from None
    waker: Waker | None = None
    try:
        waker = Waker(await wake_address(store))
        store.commit_listeners.append(waker)
        yield store
    except Unavailable as exc:
        raise _at_path(exc, settings.db) from None
    finally:
        await store.close()
        if waker is not None:
            waker.close()


def missing_database(path: Path) -> str:
    return (
        f"no database at {path.absolute()}; create it with 'leadrelay init' "
        "(or point --db / LEADRELAY_DB at an existing one)"
    )


def _at_path(exc: Unavailable, db: Path | str) -> Unavailable:
    """A database error names the file (or database) it is about (people run several)."""
    shown = describe_db(db)
    if shown in str(exc):
        return exc
    return Unavailable(f"{shown}: {exc}", code=exc.code)


# JSON escapes C0 controls itself; these it leaves raw, and a terminal may obey them
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in ESCAPES if code >= 0x7F}


def print_json(data: Any) -> None:
    """One JSON document: the same data, with the characters a terminal would obey escaped."""
    text = json.dumps(data, ensure_ascii=False, default=str).translate(_JSON_ESCAPES)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table whose every cell is text (text.py), whatever the database holds."""
    from rich.table import Table

    table = Table(
        title=None if title is None else plain(title),
        title_justify="left",
        header_style="bold",
    )
    for column in columns:
        table.add_column(plain(column))
    for row in rows:
        table.add_row(*(plain("" if cell is None else cell) for cell in row))
    stdout_console().print(table)


def stdout_console() -> Any:
    """Rich cuts to 80 columns when stdout is not a terminal; a table piped to a file or to
    grep keeps every character instead (COLUMNS, when set, still wins)."""
    from rich.console import Console

    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=PIPED_WIDTH)


PIPED_WIDTH = 10_000


def print_fields(data: dict[str, Any]) -> None:
    print_table(None, ["field", "value"], [(key, value) for key, value in data.items()])


def show(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    if as_json:
        print_json(data)
    else:
        human(data)


def say(message: str, style: str = "") -> None:
    """A note for people, on stderr so that stdout stays clean for --json.  The message is
    text, never markup (it may carry a path, a name or an error text; `style` colours it).
    A terminal wraps it at its width; a pipe or a file gets it whole on one line."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    console.print(plain(message, style), soft_wrap=not console.is_terminal)
