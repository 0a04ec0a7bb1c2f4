"""New leads (and CRMs' status changes) written in a process of their own, so the daemon's
loop only speaks HTTP.

On two cores, one interpreter that both served HTTP and ran each new lead's SQL was the
intake's limit: the write took ~30 µs of its one core per lead (docs/dev/performance.md).  So
`serve` hands each new lead to this process over a socket pair.  It runs the same write as
`leads.create_lead` (`leads.new_lead`, through `Store.submit`) on its own `Store` (group
commit, fsync before the answer) and sends back the HTTP status and body to answer with,
once the lead is durable.  A status webhook's change (`crm_status.change_status`) goes the
same way, so it is group-committed with the leads, under the same deadline, and so does an
app's trigger through Pusher's API (`pusher.api_store.write_events`, web/pusher_api.py).

Frames, each way: a 4-byte little-endian length, then
  request  orjson `[request id, deadline, "lead", fields, status, idempotency key, socket id]`
           or `[request id, deadline, "status", change, idempotency key, socket id]`
           or `[request id, deadline, "pusher", events]` (an app's Pusher API trigger)
  answer   request id (u32), HTTP status (u16), then the JSON body to send
An empty request is a heartbeat, answered at once with request id 0.

A writer can be alive but stuck (a stalled disk, SIGSTOP).  So each lead has a deadline
(`write_timeout_seconds`, on the monotonic clock both processes share): the daemon answers
503 writer_unavailable when it passes, and the writer refuses, rather than writes, a lead
whose deadline is near or gone, so that a 503 means "not stored".  (The one window left is a
commit whose fsync itself outlasts the margin; its lead is stored and answered 503, which an
Idempotency-Key makes safe to send again.)  At most `write_queue_limit` leads wait; past that,
503 at once.  A writer that answers no heartbeat for twice `write_timeout_seconds` is killed
and replaced (a slow moment gets its 503s first, and a chance to recover).

The process stops when its socket closes: when the daemon closes it after its last request,
or when the daemon dies.  A SIGTERM (the daemon's whole process group gets one) does not
stop it, so every request the daemon is still answering gets its lead written.
"""

from leadrelay.lead_writer.handle import WRITTEN, LeadWriter

__all__ = ["WRITTEN", "LeadWriter"]
