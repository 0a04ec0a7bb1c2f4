// The admin's outbox panel: backlog, the relay's state, dead letters and their retry.

import { el } from "./dom.js";

export function age(seconds) {
  if (seconds === null || seconds === undefined) return "none pending";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Who holds the relay and how it is doing, in words (the relay lease names the holder). */
export function relayWords(status) {
  const lease = status.relay_lease || {};
  const holder = status.relay_holder
    ? `held by ${status.relay_holder}` +
      (typeof lease.renewed_seconds_ago === "number" ? `, renewed ${lease.renewed_seconds_ago} s ago` : "")
    : "no daemon holds the relay";
  if (!status.pusher_enabled) return `relaying is switched off (leadrelay pusher enable); ${holder}`;
  if (status.relay_paused_reason) return `paused: ${status.relay_paused_reason}; ${holder}`;
  return status.relay_holder ? `relaying, ${holder}` : `${holder}: events wait in the outbox`;
}

/** A dead letter in words: a lead's event, or one an app triggered on a channel. */
export function deadWhat(event) {
  const whose = event.kind === "pusher_api" ? `channel ${event.channels[0]}` : `lead ${event.lead_id}`;
  return `#${event.id} ${event.type}, ${whose} (seq ${event.seq})`;
}

export class OutboxPanel {
  constructor(root, api, onError) {
    this.root = root;
    this.api = api;
    this.onError = onError;
    this.status = null;
  }

  async refresh() {
    const [status, failed] = await Promise.all([
      this.api.get("/api/admin/outbox"),
      this.api.get("/api/admin/outbox/failed", { limit: 50 }),
    ]);
    this.status = status;
    this.draw(status, failed);
    return status;
  }

  draw(status, failed) {
    const title = el("h2", "", "Outbox");
    title.id = "outbox-title";
    const facts = el("dl", "facts");
    const fact = (term, value, testid) => {
      const dd = el("dd", "", value);
      if (testid) dd.dataset.testid = testid;
      facts.append(el("dt", "", term), dd);
    };
    fact("Pending", String(status.pending), "outbox-pending");
    fact("Oldest pending", age(status.oldest_pending_age_seconds));
    fact("Retrying", String(status.retrying));
    fact("Dead letters", String(status.dead), "outbox-dead");
    const apps = status.pusher_api;  // apps' Pusher API triggers, counted in the totals too
    if (apps && apps.total) fact("Of them, apps' triggers", `${apps.pending} pending, ${apps.dead} dead`);
    fact("Relay", relayWords(status), "outbox-relay");
    const dead = el("div", "dead");
    const head = el("div", "dead-head");
    head.append(el("h3", "", "Dead letters"));
    if (failed.dead.length) {
      const all = el("button", "", "Retry all");
      all.type = "button";
      all.addEventListener("click", () => this.retry({ all: true }));
      head.append(all);
    }
    dead.append(head);
    if (!failed.dead.length) dead.append(el("p", "empty", "None: every event was delivered or is on its way."));
    const list = el("ul", "dead-list");
    for (const event of failed.dead) {
      const item = el("li");
      item.dataset.testid = `dead-${event.id}`;
      const what = el("span", "dead-what", deadWhat(event));
      const why = el("span", "dead-why", event.last_error || "no reason recorded");
      const retry = el("button", "", "Retry");
      retry.type = "button";
      retry.setAttribute("aria-label", `Retry event ${event.id}`);
      retry.addEventListener("click", () => this.retry({ event_id: event.id }));
      item.append(what, why, retry);
      list.append(item);
    }
    dead.append(list);
    this.root.replaceChildren(title, facts, dead);
  }

  async retry(body) {
    try {
      await this.api.post("/api/admin/outbox/retry", body);
    } catch (failure) {
      this.onError(`Retry failed: ${failure.message}`);
    }
    await this.refresh().catch(() => {});
  }
}
