// The bell: an unread count and the latest notifications, in words.
// BellState and describe() are pure (tested with `node --test`); mountBell() draws them.

export const MAX_NOTES = 50;

function leadName(lead) {
  // an erased lead keeps its row with an empty name
  return typeof lead.name === "string" && lead.name.trim() ? lead.name : null;
}

function providerLabel(providerId, providerName) {
  if (providerId === null || providerId === undefined) return "no provider";
  return providerName(providerId) || `provider ${providerId}`;
}

function changedBy(by) {
  if (!by) return "";
  if (by.role === "provider") return `, by provider ${by.provider_id}`;
  if (by.role === "crm") return ", by the CRM";
  return ", by an admin";
}

/** One event in words: "New lead Jane Doe → Acme Plumbing", "Lead 42: new → contacted, by provider 3". */
export function describe(data, providerName = () => null) {
  const lead = data.lead;
  if (data.type === "lead.assigned") {
    const to = providerLabel(lead.provider_id, providerName);
    const name = leadName(lead);
    if (data.seq === 1) return `New lead ${name === null ? `#${lead.id}` : name} → ${to}`;
    return `Lead ${lead.id}${name === null ? "" : ` (${name})`} assigned to ${to}`;
  }
  if (data.type === "lead.status.updated") {
    return `Lead ${lead.id}: ${data.old_status} → ${data.new_status}${changedBy(data.changed_by)}`;
  }
  return `Lead ${lead.id}: ${data.type}`;
}

export class BellState {
  constructor(limit = MAX_NOTES) {
    this.limit = limit;
    this.notes = []; // newest first: {event_id, text, at, unread}
  }

  /** Add a notification for an event once; false when that event_id is already there. */
  add(data, providerName) {
    if (this.notes.some((note) => note.event_id === data.event_id)) return false;
    this.notes.unshift({
      event_id: data.event_id,
      text: describe(data, providerName),
      at: data.occurred_at,
      unread: true,
    });
    if (this.notes.length > this.limit) this.notes.length = this.limit;
    return true;
  }

  get unread() {
    return this.notes.filter((note) => note.unread).length;
  }

  markAllRead() {
    for (const note of this.notes) note.unread = false;
  }
}

const SVG = "http://www.w3.org/2000/svg";

function bellIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "bell-icon");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute(
    "d",
    "M12 3a6 6 0 0 0-6 6v3.6L4.3 15.4A1 1 0 0 0 5.2 17h13.6a1 1 0 0 0 .9-1.6L18 12.6V9a6 6 0 0 0-6-6Zm-2 15a2 2 0 0 0 4 0Z",
  );
  svg.append(path);
  return svg;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Draw the bell into `root` (a button, a count and a panel); returns a redraw function. */
export function mountBell(root, state) {
  root.replaceChildren();
  const button = el("button", "bell-button");
  button.type = "button";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "bell-panel");
  const icon = bellIcon();
  const count = el("span", "bell-count");
  count.dataset.testid = "bell-count";
  button.append(icon, el("span", "visually-hidden", "Notifications"), count);
  const panel = el("section", "bell-panel");
  panel.id = "bell-panel";
  panel.hidden = true;
  panel.setAttribute("aria-label", "Notifications");
  const head = el("div", "bell-head");
  const title = el("h2", "", "Notifications");
  const readAll = el("button", "link-button", "Mark all read");
  readAll.type = "button";
  head.append(title, readAll);
  const list = el("ol", "bell-list");
  panel.append(head, list);
  root.append(button, panel);

  const items = new Map(); // event_id → its <li>, so a redraw only adds what is new
  const empty = el("li", "empty", "Nothing yet.");

  function item(note) {
    const node = el("li");
    node.append(el("span", "note-text", note.text));
    const time = el("time", "note-time", shortTime(note.at));
    time.dateTime = note.at || "";
    node.append(time);
    return node;
  }

  function redraw() {
    const unread = state.unread;
    count.textContent = String(unread);
    count.hidden = unread === 0;
    button.setAttribute("aria-label", `Notifications, ${unread} unread`);
    const kept = new Set(state.notes.map((note) => note.event_id));
    for (const [eventId, node] of items) {
      if (!kept.has(eventId)) {
        node.remove();
        items.delete(eventId);
      }
    }
    if (state.notes.length === 0) list.replaceChildren(empty);
    else empty.remove();
    let next = list.firstChild;
    for (const note of state.notes) {
      let node = items.get(note.event_id);
      if (!node) {
        node = item(note);
        items.set(note.event_id, node);
      }
      if (node !== next) list.insertBefore(node, next);
      const look = note.unread ? "unread" : "";
      if (node.className !== look) node.className = look;
      next = node.nextSibling;
    }
  }

  function toggle(open) {
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) readAll.focus();
  }
  button.addEventListener("click", () => toggle(panel.hidden));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      toggle(false);
      button.focus();
    }
  });
  readAll.addEventListener("click", () => {
    state.markAllRead();
    redraw();
  });
  redraw();
  return redraw;
}

export function shortTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
