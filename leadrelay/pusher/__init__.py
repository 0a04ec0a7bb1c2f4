"""The Pusher wing: everything that speaks to Pusher Channels (or soketi).

`config` is the settings stored in the database, `http` the REST client the relay triggers
with, `socket` and `protocol` the protocol-7 websocket client that `tail` and
`test-connection --roundtrip` subscribe with.  It may import the base modules and `store/`
(settings live in the database); never `relay/`, `web/` or `cli/`.
"""
