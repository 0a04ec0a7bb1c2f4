"""The CLI wing: `leadrelay …`, thin commands over the same services the API calls.

`main` holds the Typer app and the lead, provider and token commands, `ops` the operator
commands (pusher, outbox, doctor, webhooks), `support` the shared options and output, and
`tail/` the live event viewer.  The top floor: it may import any wing; no wing imports it.
"""
