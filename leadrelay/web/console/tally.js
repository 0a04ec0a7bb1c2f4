// The day at a glance kept live: the figures of GET /api/{admin|provider}/stats, moved by the
// events the page receives. Pure (tested with `node --test`): no DOM, no network.
//
// A lead counts in its status, in "open" while its status is not a closed one, as waiting
// when it is open and has no provider (admin) or is in the first status (a provider's). An
// event moves a lead's count from what it was to what it is; what the event alone cannot tell
// (who had a reassigned lead the page never saw, a median) asks for the figures again.

export class Tally {
  /**
   * stats: the API's answer; role: "admin" or "provider"; providerId: a provider's own id;
   * statuses: all, first is a new lead's; closed: the closed ones.
   */
  constructor(stats, { role, providerId = null, statuses, closed }) {
    this.stats = structuredClone(stats);
    this.role = role;
    this.providerId = providerId;
    this.first = statuses[0];
    this.closed = new Set(closed);
  }

  isOpen(status) {
    return !this.closed.has(status);
  }

  provider(id) {
    return (this.stats.providers || []).find((p) => p.id === id);
  }

  /** Add (sign 1) or take away (-1) one lead's part in the counts. */
  count(lead, sign) {
    const s = this.stats;
    const mine = this.role === "admin" || lead.provider_id === this.providerId;
    if (!mine) return;
    s.statuses[lead.status] = (s.statuses[lead.status] || 0) + sign;
    if (s.total !== undefined) s.total += sign;
    const open = this.isOpen(lead.status);
    if (open) s.open += sign;
    if (this.role === "provider") {
      if (lead.status === this.first) s.waiting += sign;
      return;
    }
    if (lead.provider_id === null) {
      if (open) s.unassigned.waiting += sign;
      return;
    }
    const p = this.provider(lead.provider_id);
    if (!p) return;
    if (open) p.open += sign;
    if (lead.status === this.first) p.waiting += sign;
  }

  /**
   * Apply one event; `before` is the lead as the page last held it, if it did.
   * Returns {changed, refetch}: whether the figures moved, and whether only the API can say
   * the rest (a median, the oldest waiting lead, a reassignment from an unknown provider).
   */
  apply(data, before) {
    if (String(data.occurred_at) <= String(this.stats.generated_at)) {
      return { changed: false, refetch: false }; // the figures count it already
    }
    const after = data.lead;
    let refetch = false;
    let was = null;
    if (data.type === "lead.status.updated") {
      was = { ...after, status: data.old_status };
      refetch = data.changed_by && data.changed_by.role === "provider"; // speed to contact
    } else if (data.seq !== 1) {
      if (!before) return { changed: false, refetch: true };
      was = before;
    }
    if (was) this.count(was, -1);
    this.count(after, 1);
    if (data.type === "lead.assigned" && after.provider_id !== null) this.assigned(after.provider_id);
    if (data.type === "lead.assigned" && data.seq === 1) this.created(data.occurred_at);
    refetch = this.oldestChanged(was, after) || refetch;
    return { changed: true, refetch };
  }

  assigned(providerId) {
    if (this.role === "provider") {
      if (providerId === this.providerId) this.stats.assigned_today += 1;
      return;
    }
    const p = this.provider(providerId);
    if (p) p.assigned_today += 1;
  }

  created(occurredAt) {
    const hours = this.stats.hours;
    if (!hours) return;
    const hour = `${String(occurredAt).slice(0, 13)}:00:00Z`;
    const slot = hours.find((h) => h.hour === hour);
    if (slot) slot.created += 1;
    else if (!hours.length || hour > hours[hours.length - 1].hour) hours.push({ hour, created: 1 });
  }

  /** Keep the oldest waiting lead right where the event tells: true when it cannot. */
  oldestChanged(was, after) {
    const waiting = this.stats.unassigned;
    if (!waiting) return false;
    const waits = (lead) => lead && lead.provider_id === null && this.isOpen(lead.status);
    if (waits(after) && !waiting.oldest_created_at) {
      waiting.oldest_created_at = after.created_at;
      return false;
    }
    if (waiting.waiting <= 0) {
      waiting.oldest_created_at = null;
      waiting.oldest_age_seconds = null;
      return false;
    }
    // the lead that stopped waiting may have been the oldest: the API knows which is now
    return waits(was) && !waits(after);
  }
}
