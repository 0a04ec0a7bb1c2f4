// The leads table: newest first, paged, updated in place as events arrive.
// Every lead field is set with textContent: lead data comes from CRMs and stays text.

export const PAGE_SIZE = 25;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export class LeadTable {
  /**
   * root: the element to draw into; role: "admin" or "provider"; statuses: the allowed ones;
   * providers: Map id → name (admin); onChange(leadId, change): PATCH it, return the lead.
   */
  constructor(root, { role, statuses, providers, onChange, onError }) {
    this.root = root;
    this.role = role;
    this.statuses = statuses;
    this.providers = providers || new Map();
    this.presence = new Map(); // provider id → {watching, last_seen} (admin)
    this.onChange = onChange;
    this.onError = onError || (() => {});
    this.filters = { status: "", provider_id: "" };
    this.leads = []; // newest first
    this.rows = new Map(); // lead id → <tr> on the current page
    this.page = 0;
    this.build();
  }

  build() {
    const wrap = el("div", "table-wrap");
    const table = el("table", "leads");
    table.dataset.testid = "leads-table";
    const caption = el("caption", "visually-hidden", "Leads, newest first");
    const head = el("thead");
    const headRow = el("tr");
    const columns = [
      ["#", "col-id"],
      ["Name", "col-name"],
      ["Email", "col-email"],
      ["Phone", "col-phone"],
      ["Source", "col-source"],
      ["Status", "col-status"],
      ["Provider", "col-provider"],
      ["Created", "col-created"],
    ];
    for (const [label, className] of columns) {
      const th = el("th", className, label);
      th.scope = "col";
      headRow.append(th);
    }
    head.append(headRow);
    this.body = el("tbody");
    table.append(caption, head, this.body);
    wrap.append(table);
    this.empty = el("p", "empty", "No leads here yet.");
    this.pager = el("nav", "pager");
    this.pager.setAttribute("aria-label", "Pages of leads");
    this.prev = el("button", "", "← Newer");
    this.prev.type = "button";
    this.next = el("button", "", "Older →");
    this.next.type = "button";
    this.pageLabel = el("span", "page-label");
    this.pager.append(this.prev, this.pageLabel, this.next);
    this.prev.addEventListener("click", () => this.show(this.page - 1));
    this.next.addEventListener("click", () => this.show(this.page + 1));
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
  setLeads(leads) {
    this.leads = [...leads].sort((a, b) => b.id - a.id);
    this.show(0);
  }

  pages() {
    return Math.max(1, Math.ceil(this.leads.length / PAGE_SIZE));
  }

  show(page) {
    this.page = Math.min(Math.max(0, page), this.pages() - 1);
    this.rows.clear();
    const start = this.page * PAGE_SIZE;
    this.body.replaceChildren(
      ...this.leads.slice(start, start + PAGE_SIZE).map((lead) => this.rowFor(lead, false)),
    );
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
      const row = this.rowFor(lead, true);
      const before = this.body.children[position] || null;
      this.body.insertBefore(row, before);
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
    const row = this.rows.get(lead.id);
    if (row) {
      this.show(this.page); // refill the page from the list
    } else {
      this.drawPager();
    }
  }

  rowFor(lead, fresh) {
    const row = el("tr", fresh ? "fresh" : "");
    row.dataset.leadId = String(lead.id);
    row.dataset.testid = `lead-${lead.id}`;
    for (const name of ["id", "name", "email", "phone", "source"]) {
      const cell = el("td", `col-${name}`);
      cell.dataset.field = name;
      row.append(cell);
    }
    const statusCell = el("td", "col-status");
    const status = el("select");
    status.dataset.field = "status";
    status.setAttribute("aria-label", `Status of lead ${lead.id}`);
    for (const value of this.statuses) status.append(new Option(value, value));
    status.addEventListener("change", () => this.change(lead.id, { status: status.value }));
    statusCell.append(status);
    const providerCell = el("td", "col-provider");
    if (this.role === "admin") {
      const provider = el("select");
      provider.dataset.field = "provider_id";
      provider.setAttribute("aria-label", `Provider of lead ${lead.id}`);
      provider.append(new Option("— none —", ""));
      for (const [id, name] of this.providers) provider.append(new Option(`${name} (#${id})`, String(id)));
      provider.addEventListener("change", () => {
        if (provider.value) this.change(lead.id, { provider_id: Number(provider.value) });
      });
      // who is watching (Pusher's channel webhooks): a dot beside the provider
      const watching = el("span", "watching");
      watching.dataset.field = "watching";
      providerCell.append(provider, watching);
    } else {
      const text = el("span");
      text.dataset.field = "provider_name";
      providerCell.append(text);
    }
    const created = el("td", "col-created");
    created.dataset.field = "created_at";
    row.append(statusCell, providerCell, created);
    if (fresh) setTimeout(() => row.classList.remove("fresh"), 4000);
    this.rows.set(lead.id, row);
    this.fill(row, lead);
    return row;
  }

  fill(row, lead) {
    const field = (name) => row.querySelector(`[data-field="${name}"]`);
    field("id").textContent = String(lead.id);
    const name = field("name");
    const erased = !(typeof lead.name === "string" && lead.name.trim());
    name.textContent = erased ? "(erased)" : lead.name;
    name.classList.toggle("muted", erased);
    field("email").textContent = lead.email || "";
    field("phone").textContent = lead.phone || "";
    field("source").textContent = lead.source || "";
    const status = field("status");
    if (![...status.options].some((option) => option.value === lead.status)) {
      status.append(new Option(lead.status, lead.status));
    }
    status.value = lead.status;
    const provider = field("provider_id");
    if (provider) {
      const value = lead.provider_id === null ? "" : String(lead.provider_id);
      if (value && ![...provider.options].some((option) => option.value === value)) {
        provider.append(new Option(this.providerName(lead.provider_id), value));
      }
      provider.value = value;
      this.drawWatching(field("watching"), lead.provider_id);
    } else {
      field("provider_name").textContent = lead.provider_id === null ? "" : this.providerName(lead.provider_id);
    }
    const created = field("created_at");
    created.textContent = when(lead.created_at);
    created.title = lead.created_at;
  }

  /** The providers' presence from GET /api/admin/providers; redraws the dots in place. */
  setPresence(providers) {
    this.presence = new Map(providers.map((p) => [p.id, p]));
    for (const [id, row] of this.rows) {
      const lead = this.leads.find((item) => item.id === id);
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
    const label = on
      ? "watching now"
      : seen && seen.last_seen
        ? `last seen ${when(seen.last_seen)}`
        : "not seen watching";
    dot.title = label;
    dot.setAttribute("aria-label", label);
  }

  async change(leadId, change) {
    const row = this.rows.get(leadId);
    const controls = row ? row.querySelectorAll("select") : [];
    for (const control of controls) control.disabled = true;
    try {
      const lead = await this.onChange(leadId, change);
      this.upsert(lead);
    } catch (failure) {
      this.onError(`Lead ${leadId} was not changed: ${failure.message}`);
      const lead = this.leads.find((item) => item.id === leadId);
      if (lead && row) this.fill(row, lead);
    } finally {
      for (const control of controls) control.disabled = false;
    }
  }
}
