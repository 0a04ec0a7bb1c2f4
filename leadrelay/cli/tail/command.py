"""The `leadrelay tail` command: options in, `leadrelay.tail` does the work."""

from __future__ import annotations

from typing import Annotated

import typer

from leadrelay.cli.support import DbOption, JsonOption, fail, run, settings_for


def tail(
    provider: Annotated[
        list[int] | None,
        typer.Option(
            "--provider",
            metavar="ID",
            min=1,
            help="follow private-provider.ID instead of admin (repeatable)",
            show_default=False,
        ),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            metavar="NAME",
            help="follow this channel instead, whatever it is: an app's channel that "
            "leadrelay's Pusher API relays, say (repeatable; not presence channels; with "
            "--since, its stored events first)",
            show_default=False,
        ),
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            metavar="NAME",
            help="only this event: lead.assigned or lead.status.updated, "
            "or short: assigned, status.updated (repeatable)",
            show_default=False,
        ),
    ] = None,
    lead: Annotated[
        int | None,
        typer.Option(
            "--lead", metavar="ID", min=1, help="only this lead's events", show_default=False
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DURATION|EVENT",
            help="first show the stored events from this point, then follow live: a duration "
            "back from now (30s, 10m, 2h, 1d, 1h30m) or an event's id or event_id (the "
            "events after it); 0 shows them all",
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="URL",
            envvar="LEADRELAY_SERVER",
            help="a daemon's base URL: channel auth and stored events come from its API, "
            "with --token, instead of from the database",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="LEADRELAY_TOKEN",
            help="an admin's or a provider's API token, for --server",
            show_default=False,
        ),
    ] = None,
    pusher: Annotated[
        str | None,
        typer.Option(
            "--pusher",
            metavar="URL",
            help="the Pusher websocket address, e.g. wss://ws-eu.pusher.com/app/KEY or "
            "ws://127.0.0.1:6001/app/KEY; by default from the stored settings, or with "
            "--server from the daemon's /broadcasting/config",
            show_default=False,
        ),
    ] = None,
    activity_timeout: Annotated[
        float | None,
        typer.Option("--activity-timeout", min=0.1, hidden=True),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow events live as they arrive on Pusher: admin, a provider's, or any channel.

    --channel follows any channel by name: those apps trigger on through leadrelay's
    Pusher API, say.

    One line an event (time, channel, event, lead, status change, delay after
    occurred_at); --json prints {"channel", "event", "data", "received_at"} a line.
    Connection state goes to stderr. Drops are retried with backoff, then the events
    missed meanwhile are fetched, each event shown once. Ctrl-C stops with exit 0.
    """
    from leadrelay.cli.tail.history import TailError
    from leadrelay.cli.tail.options import (
        Filters,
        TailOptions,
        parse_channels,
        parse_event_names,
        parse_since,
    )

    if (server is None) != (token is None):
        fail("--server and --token go together (or LEADRELAY_SERVER and LEADRELAY_TOKEN)", 2)
    if channel and (provider or event or lead or server):
        fail(
            "--channel follows any channel from the database's own settings: "
            "it goes without --provider, --event, --lead and --server",
            2,
        )
    try:
        options = TailOptions(
            providers=tuple(provider or ()),
            app_channels=parse_channels(channel or []),
            filters=Filters(parse_event_names(event or []), lead),
            since=parse_since(since) if since is not None else None,
            as_json=as_json,
            server=server,
            token=token,
            pusher_url=pusher,
            activity_timeout=activity_timeout,
        )
    except TailError as exc:
        fail(str(exc), 2)
    settings = settings_for(db) if server is None else None

    from leadrelay.cli.tail.follow import run_tail

    try:
        run(run_tail(options, settings))
    except typer.Exit as exc:
        # run() maps Ctrl-C to 130; a Ctrl-C before tail's own handler is set is still a stop.
        if exc.exit_code == 130:
            raise typer.Exit(0) from None
        raise
