"""The web wing: the daemon's HTTP side.

`app` builds the ASGI app from `api`'s routes; `intake` is `POST /api/leads`, the hot path,
whose leads the `lead_writer` process commits; `http` holds the request and response
helpers, `openapi` the API's document, `ratelimit`, `webhooks` and `webhook_secrets` the
guards in front of intake; `serve` runs it all under uvicorn.  It may import everything
below it (base modules, use cases, `store/`, `pusher/`, `relay/`); never `cli/`.
"""
