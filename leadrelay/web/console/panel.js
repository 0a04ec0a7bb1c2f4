// One lead's side panel: every field (as text), its status and provider (changed through the
// safe actions), and its timeline from the events API: who changed what and when, erasure,
// and (for admins) each event's delivery: delivered at, pending, retrying or dead with the
// reason and a Retry button. The proof of delivery a provider's "I never got it" asks for.

import { button, clock, el, leadName, stamp, when } from "./dom.js";

// deliveries move without an event the page would see (a retry, a dead letter): read again
const REFRESH_MS = 5000;

const FIELDS = [
  ["email", "Email"],
  ["phone", "Phone"],
  ["source", "Source"],
  ["external_id", "CRM id"],
  ["notes", "Notes"],
  ["created_at", "Created"],
  ["updated_at", "Updated"],
];

/** Who made a change, in words. */
export function actor(by, providerName) {
  if (!by) return "";
  if (by.role === "provider") return providerName(by.provider_id) || `provider ${by.provider_id}`;
  return by.role === "crm" ? "the CRM" : "an admin";
}

/** An event of the timeline in words (pure). */
export function story(data, providerName) {
  const to = data.lead.provider_id === null ? "no provider" : providerName(data.lead.provider_id);
  if (data.type === "lead.assigned") {
    return data.seq === 1 ? `Created, assigned to ${to}` : `Assigned to ${to}`;
  }
  return `${data.old_status} → ${data.new_status}, by ${actor(data.changed_by, providerName)}`;
}

/** An event's delivery in words: [look, text] (pure). */
export function deliveryWords(delivery) {
  if (!delivery) return null;
  switch (delivery.state) {
    case "delivered":
      return ["ok", `delivered ${clock(delivery.delivered_at)}`];
    case "dead":
      return ["bad", `dead: ${delivery.last_error || "no reason recorded"}`];
    case "retrying":
      return ["wait", `retrying (tried ${delivery.attempts}): ${delivery.last_error || ""}`];
    default:
      return ["wait", "pending"];
  }
}

export class LeadPanel {
  /** root: the <aside>; api; me (with statuses); providers: Map id → name;
   * onChange(lead, change) → the lead or null (the safe actions); onErase(lead) → bool;
   * onError(text). */
  constructor(root, { api, me, providers, onChange, onErase, onError }) {
    this.root = root;
    this.api = api;
    this.me = me;
    this.providers = providers;
    this.onChange = onChange;
    this.onErase = onErase;
    this.onError = onError;
    this.leadId = null;
    this.opener = null;
    // Escape closes it wherever the focus is, unless a question is open over it
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.isOpen && !document.querySelector("dialog[open]")) this.close();
    });
  }

  providerName = (id) => this.providers.get(id) || `provider ${id}`;

  get isOpen() {
    return this.leadId !== null;
  }

  async open(leadId, opener) {
    this.leadId = leadId;
    this.seen = null;
    this.opener = opener || null;
    this.root.hidden = false;
    document.body.classList.add("panel-open");
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    await this.refresh();
    const close = this.root.querySelector(".panel-close");
    if (close) close.focus();
  }

  close() {
    if (!this.isOpen) return;
    clearInterval(this.timer);
    this.leadId = null;
    this.seen = null;
    this.root.hidden = true;
    this.root.replaceChildren();
    document.body.classList.remove("panel-open");
    if (this.opener && this.opener.isConnected) this.opener.focus();
  }

  async refresh() {
    const id = this.leadId;
    if (id === null) return;
    let lead;
    let events;
    try {
      if (this.me.role === "admin") {
        ({ lead, events } = await this.api.get(`/api/admin/leads/${id}/events`));
      } else {
        lead = await this.api.get(`/api/provider/leads/${id}`);
        ({ events } = await this.api.get("/api/provider/events", { lead_id: id, limit: 1000 }));
      }
    } catch (failure) {
      this.onError(`Lead ${id} could not be read: ${failure.message}`);
      return;
    }
    const seen = JSON.stringify([lead, events]);
    if (this.leadId !== id || seen === this.seen) return; // unchanged: keep the focus where it is
    this.seen = seen;
    this.draw(lead, events);
  }

  draw(lead, events) {
    const head = el("div", "panel-head");
    const title = el("h2", leadName(lead) === null ? "muted" : "", leadName(lead) ?? "(erased)");
    title.id = "panel-title";
    head.append(el("p", "panel-id", `Lead ${lead.id}`), title);
    head.append(button("Close", "panel-close", () => this.close()));
    const facts = el("dl", "facts");
    for (const [name, label] of FIELDS) {
      if (!(name in lead)) continue;
      const value = name.endsWith("_at") ? when(lead[name]) : lead[name];
      const dd = el("dd", value ? "" : "muted", value || "—");
      dd.dataset.field = name;
      facts.append(el("dt", "", label), dd);
    }
    const timeline = el("section", "timeline");
    timeline.setAttribute("aria-label", "Timeline");
    timeline.append(el("h3", "", "Timeline"), this.timeline(lead, events));
    this.root.setAttribute("aria-labelledby", "panel-title");
    this.root.replaceChildren(head, this.controls(lead), facts, timeline);
  }

  /** The lead's status (and, for admins, its provider and erasure), asked before changed. */
  controls(lead) {
    const box = el("div", "panel-controls");
    const pick = (label, options, value, change) => {
      const wrap = el("label", "", label);
      const select = el("select");
      for (const [text, v] of options) select.append(new Option(text, v));
      select.value = value;
      select.addEventListener("change", async () => {
        select.disabled = true;
        const done = await this.onChange(lead, change(select.value));
        select.disabled = false;
        if (!done) select.value = value;
        await this.refresh();
      });
      wrap.append(select);
      box.append(wrap);
      return select;
    };
    const statuses = [...new Set([...this.me.statuses, lead.status])];
    pick("Status", statuses.map((s) => [s, s]), lead.status, (v) => ({ status: v })).dataset.field = "status";
    if (this.me.role === "admin") {
      const options = [["— none —", ""], ...[...this.providers].map(([id, name]) => [name, String(id)])];
      const current = lead.provider_id === null ? "" : String(lead.provider_id);
      pick("Provider", options, current, (v) => ({ provider_id: v ? Number(v) : null })).dataset.field = "provider_id";
      if (!lead.erased_at) {
        box.append(
          button("Erase personal data…", "danger", async () => {
            if (await this.onErase(lead)) await this.refresh();
          }),
        );
      }
    }
    return box;
  }

  timeline(lead, events) {
    const list = el("ol", "events");
    for (const item of events) {
      const data = item.data;
      const entry = el("li");
      entry.dataset.eventId = String(item.id);
      const time = el("time", "event-time", stamp(data.occurred_at));
      time.dateTime = data.occurred_at;
      entry.append(time);
      entry.append(el("span", "event-what", story(data, this.providerName)));
      const words = deliveryWords(item.delivery);
      if (words) {
        const [look, text] = words;
        const badge = el("span", `delivery ${look}`, text);
        badge.dataset.state = item.delivery.state;
        entry.append(badge);
        if (item.delivery.state === "dead") {
          const retry = button("Retry", "retry", () => this.retry(item.id));
          retry.setAttribute("aria-label", `Retry event ${item.id}`);
          entry.append(retry);
        }
      }
      list.append(entry);
    }
    if (lead.erased_at) {
      const entry = el("li", "erased");
      entry.append(el("time", "event-time", stamp(lead.erased_at)));
      entry.append(el("span", "event-what", "Personal data erased (nothing broadcast)"));
      list.append(entry);
    }
    if (!list.children.length) list.append(el("li", "empty", "No events kept for this lead."));
    return list;
  }

  async retry(eventId) {
    try {
      await this.api.post("/api/admin/outbox/retry", { event_id: eventId });
    } catch (failure) {
      this.onError(`Retry failed: ${failure.message}`);
    }
    await this.refresh();
  }
}
