"""`POST /api/leads/status`, a CRM's status webhook, through the same door as a new lead.

It is read and authorised like `POST /api/leads` (intake.py: the body limit, an admin token
or a Standard Webhooks signature, the rate limit), its key is scoped to its caller the same
way (an Idempotency-Key under `status:`, so it never replays a lead's answer; a webhook-id
is one delivery for both endpoints, refused on the second), and under `serve` its change is
written by the lead writer process, group-committed with the leads and durable before the 200.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from leadrelay import crm_status
from leadrelay.web.http import decode_json, socket_id
from leadrelay.web.intake import Caller, Receive, Scope, Send, handle

if TYPE_CHECKING:
    from leadrelay.web.state import AppState

PATH = "/api/leads/status"


async def change_status(st: AppState, scope: Scope, receive: Receive, send: Send) -> None:
    await handle(st, scope, receive, send, _change)


async def _change(
    st: AppState, headers: dict[bytes, bytes], raw: bytes, caller: Caller
) -> tuple[int, bytes]:
    """(200, `{"lead", "applied", "reason"}`), the same again for a repeated key."""
    change = crm_status.parse_status_change(decode_json(raw), st.settings.statuses)
    key_header = headers.get(b"idempotency-key")
    key = caller.idempotency_key(
        None if key_header is None else key_header.decode("latin-1"), kind="status:"
    )
    sid_header = headers.get(b"x-socket-id")
    sid = socket_id(None if sid_header is None else sid_header.decode("latin-1"))
    if st.lead_writer is not None:
        return await st.lead_writer.change_status(change, idempotency_key=key, socket_id=sid)
    result = await crm_status.update_status(st.store, change, idempotency_key=key, socket_id=sid)
    return 200, orjson.dumps(result.answer())
