// Nothing missed, nothing twice: the pure bookkeeping of the console's event feed.
//
// Events reach the console two ways: live from Pusher (the event's data) and fetched from
// /api/{admin|provider}/events (items that wrap the data with the outbox id). Feed decides,
// for each, whether it is new (apply it), a duplicate (drop it: same event_id), or the sign
// of a gap (its seq skips one of its lead's: fetch that lead's events first). It touches no
// DOM and no network, so it is tested alone with `node --test`.

/** The event data of an events-API item or of a live event, whichever it is given. */
export function eventData(itemOrData) {
  return itemOrData && itemOrData.data && itemOrData.event_id && itemOrData.data.event_id
    ? itemOrData.data
    : itemOrData;
}

export class Feed {
  constructor({ cursor = 0, remember = 5000 } = {}) {
    this.cursor = cursor; // the events API's `after`: every event up to it has been applied
    this.seen = new Set(); // event_ids applied, oldest first (a Set keeps insertion order)
    this.lastSeq = new Map(); // lead id -> highest seq applied
    this.remember = remember;
  }

  /** True when this event was applied already. */
  isDuplicate(data) {
    return this.seen.has(data.event_id);
  }

  /** True when an earlier event of the same lead is missing: its seq skips one we know of. */
  hasGap(data) {
    const last = this.lastSeq.get(data.lead.id);
    return last !== undefined && data.seq > last + 1;
  }

  /** Record the event as applied; false (and nothing recorded) when it was already. */
  accept(data) {
    if (this.isDuplicate(data)) return false;
    this.seen.add(data.event_id);
    if (this.seen.size > this.remember) {
      this.seen.delete(this.seen.values().next().value);
    }
    const last = this.lastSeq.get(data.lead.id) ?? 0;
    if (data.seq > last) this.lastSeq.set(data.lead.id, data.seq);
    return true;
  }

  /** Move the fetched cursor forward (never back). */
  advance(nextAfter) {
    if (typeof nextAfter === "number" && nextAfter > this.cursor) this.cursor = nextAfter;
  }
}

/** The fetched events not yet applied, in the order to apply them: by lead, then seq. */
export function unseen(feed, items) {
  const fresh = [];
  const ids = new Set();
  for (const item of items) {
    const data = eventData(item);
    if (!feed.isDuplicate(data) && !ids.has(data.event_id)) {
      ids.add(data.event_id);
      fresh.push(data);
    }
  }
  // the events API answers oldest first already; keep that, and each lead's seq order
  return fresh;
}

/**
 * Whether a lead as an event shows it is at least as new as the row the table holds.
 * Times are RFC 3339 in UTC with milliseconds, so they compare as strings.
 */
export function isNewer(eventLead, row) {
  if (!row) return true;
  return String(eventLead.updated_at) >= String(row.updated_at);
}
