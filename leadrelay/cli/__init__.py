"""The CLI wing: `leadrelay …`, thin commands over the same services the API calls.

`main` holds the Typer app and the lead, provider and token commands, `ops` the operator
commands (pusher, outbox, doctor, webhooks), `support` the shared options and output, and
`tail/` the live event viewer.  The top floor: it may import any wing; no wing imports it.
"""


def run() -> None:
    """The console script. A Ctrl-C that lands before a command has its own handling (while
    Python imports the CLI, say) ends it quietly with 130 too, not with a traceback."""
    try:
        from leadrelay.cli.main import main

        main()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
