// The leads table: newest first, paged, updated in place as events arrive; on a phone each
// lead is a card (name, status, provider, age: style.css). A name opens the lead's panel; a
// status or provider change goes through the safe actions (ask, then Undo).
// Every lead field is set with textContent: lead data comes from CRMs and stays text.

import { age, button, el, leadName, when } from "./dom.js";

export const PAGE_SIZE = 25;
const AGE_REFRESH_MS = 30_000;
const COLUMNS = [
  ["#", "id"],
  ["Name", "name"],
  ["Email", "email"],
  ["Phone", "phone"],
  ["Source", "source"],
  ["Status", "status"],
  ["Provider", "provider"],
  ["Age", "age"],
];

export class LeadTable {
  /**
   * root: the element to draw into; role: "admin" or "provider"; statuses: the allowed ones;
   * providers: Map id → name (admin); onChange(lead, change): ask and PATCH it, resolve to
   * the lead or null; onOpen(leadId, opener): show the lead's panel.
   */
  constructor(root, { role, statuses, providers, onChange, onOpen }) {
    this.root = root;
    this.role = role;
    this.statuses = statuses;
    this.providers = providers || new Map();
    this.presence = new Map(); // provider id → {watching, last_seen} (admin)
    this.onChange = onChange;
    this.onOpen = onOpen || (() => {});
    this.filters = { status: "", provider_id: "" };
    this.leads = []; // newest first
    this.rows = new Map(); // lead id → <tr> on the current page
    this.page = 0;
    this.build();
    this.ager = setInterval(() => this.redrawAges(), AGE_REFRESH_MS);
  }

  stop() {
    clearInterval(this.ager);
  }

  build() {
    const wrap = el("div", "table-wrap");
    const table = el("table", "leads");
    table.dataset.testid = "leads-table";
    const head = el("thead");
    const headRow = el("tr");
    for (const [label, name] of COLUMNS) {
      const th = el("th", `col-${name}`, label);
      th.scope = "col";
      headRow.append(th);
    }
    head.append(headRow);
    this.body = el("tbody");
    table.append(el("caption", "visually-hidden", "Leads, newest first"), head, this.body);
    wrap.append(table);
    this.empty = el("p", "empty", "No leads here yet.");
    this.pager = el("nav", "pager");
    this.pager.setAttribute("aria-label", "Pages of leads");
    this.prev = button("← Newer", "", () => this.show(this.page - 1));
    this.next = button("Older →", "", () => this.show(this.page + 1));
    this.pageLabel = el("span", "page-label");
    this.pager.append(this.prev, this.pageLabel, this.next);
    this.root.replaceChildren(wrap, this.empty, this.pager);
  }

  providerName(id) {
    return this.providers.get(id) || `provider ${id}`;
  }

  matches(lead) {
    if (this.filters.status && lead.status !== this.filters.status) return false;
    if (this.filters.provider_id) {
      const wanted = this.filters.provider_id === "none" ? null : Number(this.filters.provider_id);
      if (lead.provider_id !== wanted) return false;
    }
    return true;
  }

  /** Replace every lead (a fresh load from the list API). */
  setLeads(leads, emptyText = "No leads here yet.") {
    this.leads = [...leads].sort((a, b) => b.id - a.id);
    this.empty.textContent = emptyText;
    this.show(0);
  }

  pages() {
    return Math.max(1, Math.ceil(this.leads.length / PAGE_SIZE));
  }

  show(page) {
    this.page = Math.min(Math.max(0, page), this.pages() - 1);
    this.rows.clear();
    const start = this.page * PAGE_SIZE;
    this.body.replaceChildren(...this.leads.slice(start, start + PAGE_SIZE).map((lead) => this.rowFor(lead, false)));
    this.drawPager();
  }

  drawPager() {
    this.empty.hidden = this.leads.length > 0;
    this.pager.hidden = this.leads.length <= PAGE_SIZE;
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= this.pages() - 1;
    this.pageLabel.textContent = `Page ${this.page + 1} of ${this.pages()} · ${this.leads.length} leads`;
  }

  /** A lead as an event shows it: update its row in place, add it (highlighted), or drop it
   * when it no longer matches the filters. */
  upsert(lead) {
    const index = this.leads.findIndex((item) => item.id === lead.id);
    if (!this.matches(lead)) {
      if (index >= 0) this.remove(index);
      return;
    }
    if (index >= 0) {
      this.leads[index] = lead;
      const row = this.rows.get(lead.id);
      if (row) this.fill(row, lead);
      return;
    }
    const at = this.leads.findIndex((item) => item.id < lead.id);
    const position = at < 0 ? this.leads.length : at;
    this.leads.splice(position, 0, lead);
    if (this.page === 0 && position < PAGE_SIZE) {
      const before = this.body.children[position] || null;
      this.body.insertBefore(this.rowFor(lead, true), before);
      while (this.body.children.length > PAGE_SIZE) {
        const last = this.body.lastElementChild;
        this.rows.delete(Number(last.dataset.leadId));
        last.remove();
      }
    }
    this.drawPager();
  }

  remove(index) {
    const [lead] = this.leads.splice(index, 1);
    if (this.rows.get(lead.id)) this.show(this.page); // refill the page from the list
    else this.drawPager();
  }

  find(id) {
    return this.leads.find((item) => item.id === id);
  }

  rowFor(lead, fresh) {
    const row = el("tr", fresh ? "fresh" : "");
    row.dataset.leadId = String(lead.id);
    row.dataset.testid = `lead-${lead.id}`;
    const cell = (name, child) => {
      const td = el("td", `col-${name}`);
      if (child) td.append(child);
      row.append(td);
      return td;
    };
    cell("id").dataset.field = "id";
    const open = button("", "lead-open", () => this.onOpen(lead.id, open));
    open.dataset.field = "name";
    cell("name", open);
    for (const name of ["email", "phone", "source"]) cell(name).dataset.field = name;
    cell("status", this.statusControl(lead));
    const provider = cell("provider");
    if (this.role === "admin") provider.append(...this.providerControl(lead));
    else provider.dataset.field = "provider_name";
    cell("age").dataset.field = "age";
    if (fresh) setTimeout(() => row.classList.remove("fresh"), 4000);
    this.rows.set(lead.id, row);
    this.fill(row, lead);
    return row;
  }

  /** A status select whose change is asked first (and put back when cancelled). */
  statusControl(lead) {
    const status = el("select");
    status.dataset.field = "status";
    status.setAttribute("aria-label", `Status of lead ${lead.id}`);
    for (const value of this.statuses) status.append(new Option(value, value));
    status.addEventListener("change", () => this.change(lead.id, { status: status.value }, status));
    return status;
  }

  /** A provider select and the dot that says whether that provider is watching. */
  providerControl(lead) {
    const provider = el("select");
    provider.dataset.field = "provider_id";
    provider.setAttribute("aria-label", `Provider of lead ${lead.id}`);
    provider.append(new Option("— none —", ""));
    for (const [id, name] of this.providers) provider.append(new Option(name, String(id)));
    provider.addEventListener("change", () => {
      const value = provider.value ? Number(provider.value) : null;
      this.change(lead.id, { provider_id: value }, provider);
    });
    const watching = el("span", "watching");
    watching.dataset.field = "watching";
    return [provider, watching];
  }

  fill(row, lead) {
    const field = (name) => row.querySelector(`[data-field="${name}"]`);
    field("id").textContent = String(lead.id);
    const name = field("name");
    const erased = leadName(lead) === null;
    name.textContent = erased ? "(erased)" : lead.name;
    name.classList.toggle("muted", erased);
    name.setAttribute("aria-label", `Open lead ${lead.id}${erased ? "" : `, ${lead.name}`}`);
    field("email").textContent = lead.email || "";
    field("phone").textContent = lead.phone || "";
    field("source").textContent = lead.source || "";
    this.fillControls(row, lead);
    const ageCell = field("age");
    ageCell.textContent = age(lead.created_at);
    ageCell.title = `created ${when(lead.created_at)}`;
  }

  /** Set a row's status and provider controls to the lead's values. */
  fillControls(root, lead) {
    const status = root.querySelector('[data-field="status"]');
    if (![...status.options].some((option) => option.value === lead.status)) {
      status.append(new Option(lead.status, lead.status));
    }
    status.value = lead.status;
    const provider = root.querySelector('[data-field="provider_id"]');
    if (provider) {
      const value = lead.provider_id === null ? "" : String(lead.provider_id);
      if (value && ![...provider.options].some((option) => option.value === value)) {
        provider.append(new Option(this.providerName(lead.provider_id), value));
      }
      provider.value = value;
      this.drawWatching(root.querySelector('[data-field="watching"]'), lead.provider_id);
    }
    const text = root.querySelector('[data-field="provider_name"]');
    if (text) text.textContent = lead.provider_id === null ? "" : this.providerName(lead.provider_id);
  }

  /** The providers' presence from GET /api/admin/providers; redraws the dots in place. */
  setPresence(providers) {
    this.presence = new Map(providers.map((p) => [p.id, p]));
    for (const [id, row] of this.rows) {
      const lead = this.find(id);
      const dot = row.querySelector('[data-field="watching"]');
      if (lead && dot) this.drawWatching(dot, lead.provider_id);
    }
  }

  drawWatching(dot, providerId) {
    const seen = providerId === null ? undefined : this.presence.get(providerId);
    const on = Boolean(seen && seen.watching);
    dot.classList.toggle("on", on);
    dot.hidden = !seen;
    dot.textContent = on ? "●" : "○";
    const label = on ? "watching now" : seen && seen.last_seen ? `last seen ${when(seen.last_seen)}` : "not seen watching";
    dot.title = label;
    dot.setAttribute("aria-label", label);
  }

  redrawAges() {
    for (const [id, row] of this.rows) {
      const lead = this.find(id);
      if (lead) row.querySelector('[data-field="age"]').textContent = age(lead.created_at);
    }
  }

  /** Ask for the change (onChange); on a cancel or a failure the control shows the lead
   * as it is again. */
  async change(leadId, change, control) {
    const lead = this.find(leadId);
    if (!lead) return;
    control.disabled = true;
    try {
      const changed = await this.onChange(lead, change);
      if (changed) this.upsert(changed);
    } finally {
      control.disabled = false;
      const row = this.rows.get(leadId);
      const now = this.find(leadId);
      if (row && now) this.fillControls(row, now);
    }
  }
}
