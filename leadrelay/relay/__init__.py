"""The relay wing: the outbox → Pusher.

`relay.Relay` claims due events in per-lead order and triggers them in batches with retries;
`runner` decides where it runs (the daemon's loop or a child process) and supervises it;
`wake` is the datagram that tells it events were committed.  It may import the base modules,
`store/` and `pusher/`; never `web/` or `cli/`.
"""
