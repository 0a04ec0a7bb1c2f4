"""The OpenAPI 3.1 document describing every route of the API.

It states what the validators in `leads`, `http` and `pusher_config` accept, so that a
request valid by this document is refused only for what a schema cannot say (an unknown
provider, Pusher settings that are incomplete); `tests/web/test_fuzz.py` holds it to that. The
parts: `parts` (patterns, schema makers), `schemas` (components), `paths` (the API of
CONTRACT §2 and the status webhook), `console` (the console and its API), `glance` (its
stats and lead timeline), `pusher_api` (Pusher's HTTP API, when the setting serves it).
"""

from __future__ import annotations

from leadrelay import __version__
from leadrelay.config import Settings
from leadrelay.web.openapi import console, glance
from leadrelay.web.openapi.parts import PUBLIC, Schema
from leadrelay.web.openapi.paths import api_paths
from leadrelay.web.openapi.pusher_api import pusher_api_paths
from leadrelay.web.openapi.schemas import components


def document(settings: Settings) -> Schema:
    paths = {**api_paths(settings), **console.paths(), **glance.paths()}
    for path, operations in paths.items():
        if path in PUBLIC or path in console.PUBLIC_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}]
    if settings.pusher_api:  # signed as Pusher signs, with the stored app's secret
        paths.update(pusher_api_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leadrelay",
            "version": __version__,
            "description": 'Every error is {"error": {"code", "message"}} with a 4xx status.',
        },
        "paths": paths,
        "components": {
            "schemas": components(settings),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
