// The day at a glance above the leads: counts by status as a bar, leads per hour today as
// columns, who waits and for how long, and each provider's open leads, assignments today and
// speed to contact (the admin's); a provider sees its own. Live from the page's events
// (tally.js), read again from the API when an event cannot say it all and every minute.

import { hourColumns, slug, statusBar } from "./chart.js";
import { debounce, duration, el } from "./dom.js";
import { Tally } from "./tally.js";

const REFRESH_MS = 60_000;
const WINDOWS = [
  [1, "today"],
  [7, "7 days"],
  [30, "30 days"],
];

function contacts(n) {
  return `${n || 0} first contact${n === 1 ? "" : "s"}`;
}

/** Midnight on this browser's clock, as the API's `since`. */
export function localMidnight(now = new Date()) {
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  return midnight.toISOString();
}

export class Glance {
  /** root: the section; api: Api; me: GET /api/me; providers: Map id → name;
   * presence(): Map id → {watching}; onError(text). */
  constructor(root, { api, me, onError, presence = () => new Map() }) {
    this.root = root;
    this.api = api;
    this.me = me;
    this.onError = onError;
    this.presence = presence;
    this.window = 7;
    this.tally = null;
    this.path = me.role === "admin" ? "/api/admin/stats" : "/api/provider/stats";
    this.later = debounce(() => this.refresh(), 1500);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.later.cancel();
  }

  async refresh() {
    try {
      const stats = await this.api.get(this.path, { since: localMidnight(), window_days: this.window });
      this.tally = new Tally(stats, {
        role: this.me.role,
        providerId: this.me.provider_id,
        statuses: this.me.statuses,
        closed: this.me.closed_statuses || [],
      });
      this.draw();
    } catch (failure) {
      this.onError(`The figures of the day could not be read: ${failure.message}`);
    }
  }

  /** An event the page received; `before`: the lead as the page held it, if it did. */
  apply(data, before) {
    if (!this.tally) return;
    const { changed, refetch } = this.tally.apply(data, before);
    if (changed) this.draw();
    if (refetch) this.later();
  }

  draw() {
    const s = this.tally.stats;
    const head = el("div", "glance-head");
    head.append(el("h2", "", this.me.role === "admin" ? "Today" : "Your day"), this.windowPicker());
    const cards = el("div", "cards");
    cards.append(this.statusCard(s));
    if (this.me.role === "admin") {
      cards.append(this.waitingCard(s.unassigned), this.hoursCard(s.hours));
      this.root.replaceChildren(head, cards, this.providerTable(s.providers));
    } else {
      cards.append(this.ownCard(s));
      this.root.replaceChildren(head, cards);
    }
    this.root.hidden = false;
  }

  windowPicker() {
    const label = el("label", "window", "Speed to contact over ");
    const select = el("select");
    select.dataset.testid = "glance-window";
    for (const [days, words] of WINDOWS) select.append(new Option(words, String(days)));
    select.value = String(this.window);
    select.addEventListener("change", () => {
      this.window = Number(select.value);
      this.refresh();
    });
    label.append(select);
    return label;
  }

  statusCard(s) {
    const card = el("section", "card status-card");
    const total = Object.values(s.statuses).reduce((a, b) => a + b, 0);
    card.append(el("h3", "", "Leads by status"), el("p", "big", `${total}`));
    const counts = this.me.statuses.map((status) => [status, s.statuses[status] || 0]);
    card.append(statusBar(counts));
    const legend = el("ul", "legend");
    for (const [status, n] of counts) {
      const item = el("li");
      item.dataset.status = status;
      item.append(el("span", `swatch status-${slug(status)}`), el("span", "", `${status} `));
      item.append(el("strong", "", String(n)));
      legend.append(item);
    }
    card.append(legend);
    card.dataset.testid = "glance-statuses";
    return card;
  }

  waitingCard(unassigned) {
    const card = el("section", "card");
    card.dataset.testid = "glance-unassigned";
    card.append(el("h3", "", "Waiting for a provider"), el("p", "big", String(unassigned.waiting)));
    const oldest = unassigned.oldest_created_at
      ? `oldest waits ${duration((Date.now() - new Date(unassigned.oldest_created_at)) / 1000)}`
      : "none waiting";
    card.append(el("p", unassigned.waiting ? "note warn" : "note", oldest));
    return card;
  }

  hoursCard(hours) {
    const card = el("section", "card hours-card");
    const total = hours.reduce((sum, h) => sum + h.created, 0);
    card.append(el("h3", "", "New leads per hour"), el("p", "big", `${total} today`));
    card.append(hourColumns(hours));
    card.dataset.testid = "glance-hours";
    return card;
  }

  providerTable(providers) {
    const wrap = el("div", "table-wrap providers-wrap");
    const table = el("table", "providers");
    table.dataset.testid = "glance-providers";
    const caption = el("caption", "", "Providers");
    const head = el("tr");
    for (const title of ["Provider", "Open", "Not contacted", "Assigned today", "Speed to contact"]) {
      const th = el("th", "", title);
      th.scope = "col";
      head.append(th);
    }
    const body = el("tbody");
    const presence = this.presence();
    for (const p of providers) {
      const row = el("tr");
      row.dataset.providerId = String(p.id);
      const name = el("td", "name");
      const seen = presence.get(p.id);
      name.append(el("span", seen && seen.watching ? "watching on" : "watching", seen && seen.watching ? "●" : "○"));
      name.append(` ${p.name}`);
      row.append(name, el("td", "num", String(p.open)), el("td", "num", String(p.waiting)));
      row.append(el("td", "num", String(p.assigned_today)));
      const speed = el("td", "num", duration(p.median_contact_seconds));
      speed.title = `median of ${contacts(p.contacted)}`;
      speed.dataset.field = "speed";
      row.append(speed);
      body.append(row);
    }
    const thead = el("thead");
    thead.append(head);
    table.append(caption, thead, body);
    wrap.append(table);
    if (!providers.length) wrap.append(el("p", "empty", "No providers yet: leadrelay providers add NAME"));
    return wrap;
  }

  ownCard(s) {
    const card = el("section", "card");
    card.dataset.testid = "glance-own";
    card.append(el("h3", "", "Your speed to contact"));
    card.append(el("p", "big", duration(s.median_contact_seconds)));
    const facts = el("p", "note");
    facts.textContent = `median of ${contacts(s.contacted)} · ${s.open} open · ${s.waiting} not contacted · ${s.assigned_today} assigned today`;
    card.append(facts);
    return card;
  }
}

