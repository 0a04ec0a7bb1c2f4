// The bell: the latest 100 notifications in words, with an unread count, kept across reloads.
//
// Nothing personal is stored in the browser: the notes come back from the events API, after
// the console's own cursor; localStorage holds that cursor and how far the notes were read,
// both event ids (UUIDv7: they sort by time), under a key of the token's role and provider.
// BellState, describe() and BellMemory are pure (tested with `node --test`); mountBell draws.

import { button, el } from "./dom.js";

export const MAX_NOTES = 100;
const HISTORY_PAGE = 1000;
const HISTORY_PAGES = 5;

function leadName(lead) {
  // an erased lead keeps its row with an empty name
  return typeof lead.name === "string" && lead.name.trim() ? lead.name : null;
}

function providerLabel(providerId, providerName) {
  if (providerId === null || providerId === undefined) return "no provider";
  return providerName(providerId) || `provider ${providerId}`;
}

function changedBy(by, providerName) {
  if (!by) return "";
  if (by.role === "provider") return `, by ${providerLabel(by.provider_id, providerName)}`;
  if (by.role === "crm") return ", by the CRM";
  return ", by an admin";
}

/** One event in words: "New lead Jane Doe → Acme Plumbing",
 * "Lead 42 (Jane Doe): new → contacted, by Acme Plumbing". */
export function describe(data, providerName = () => null) {
  const lead = data.lead;
  const name = leadName(lead);
  const label = `Lead ${lead.id}${name === null ? "" : ` (${name})`}`;
  if (data.type === "lead.assigned") {
    const to = providerLabel(lead.provider_id, providerName);
    if (data.seq === 1) return `New lead ${name === null ? `#${lead.id}` : name} → ${to}`;
    return `${label} assigned to ${to}`;
  }
  if (data.type === "lead.status.updated") {
    return `${label}: ${data.old_status} → ${data.new_status}${changedBy(data.changed_by, providerName)}`;
  }
  return `${label}: ${data.type}`;
}

export class BellState {
  constructor(limit = MAX_NOTES, readUpTo = "") {
    this.limit = limit;
    this.readUpTo = readUpTo; // every note whose event_id sorts at or below it is read
    this.notes = []; // newest first: {event_id, text, at}
    this.dropped = null; // the event_id of the newest note let go (the history's cursor)
  }

  /** Add a notification for an event once; false when that event_id is already there. */
  add(data, providerName) {
    if (this.notes.some((note) => note.event_id === data.event_id)) return false;
    const note = { event_id: data.event_id, text: describe(data, providerName), at: data.occurred_at };
    const at = this.notes.findIndex((other) => other.event_id < note.event_id);
    this.notes.splice(at < 0 ? this.notes.length : at, 0, note);
    while (this.notes.length > this.limit) {
      const gone = this.notes.pop();
      if (this.dropped === null || gone.event_id > this.dropped) this.dropped = gone.event_id;
    }
    return true;
  }

  isUnread(note) {
    return note.event_id > this.readUpTo;
  }

  get unread() {
    return this.notes.filter((note) => this.isUnread(note)).length;
  }

  markAllRead() {
    if (this.notes.length && this.notes[0].event_id > this.readUpTo) this.readUpTo = this.notes[0].event_id;
  }
}

/** The bell's two ids in localStorage (or any Storage), per role and provider. */
export class BellMemory {
  constructor(storage, me) {
    this.storage = storage;
    this.key = `leadrelay.bell.${me.role}.${me.provider_id ?? "all"}`;
  }

  load() {
    try {
      const saved = JSON.parse(this.storage.getItem(this.key) || "{}");
      const id = (value) => (typeof value === "string" || typeof value === "number" ? value : null);
      return { after: id(saved.after), readUpTo: typeof saved.readUpTo === "string" ? saved.readUpTo : "" };
    } catch {
      return { after: null, readUpTo: "" };
    }
  }

  save(state, after) {
    const kept = { after: state.dropped ?? after, readUpTo: state.readUpTo };
    try {
      this.storage.setItem(this.key, JSON.stringify(kept));
    } catch {
      // storage full or refused (private mode): the bell still works, it only forgets
    }
  }
}

/**
 * The notes of the events after `after` (an event id, or a cursor number), newest 100, from
 * the events API: the bell after a reload. A cursor that is gone (pruned), or too far back to
 * page through, starts from `fallback` instead.
 */
export async function loadHistory(api, path, after, fallback) {
  let cursor = after ?? fallback;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const found = [];
      for (let page = 0; page < HISTORY_PAGES; page += 1) {
        const answer = await api.get(path, { after: cursor, limit: HISTORY_PAGE });
        found.push(...answer.events.map((item) => item.data));
        if (answer.events.length < HISTORY_PAGE) return { events: found.slice(-MAX_NOTES), after: after ?? fallback };
        cursor = answer.next_after;
      }
    } catch (failure) {
      if (![404, 410].includes(failure.status)) throw failure;
    }
    cursor = fallback; // lost or too old: the recent past only
    after = null;
  }
  return { events: [], after: fallback };
}

function bellIcon() {
  const SVG = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(SVG, "svg");
  for (const [name, value] of Object.entries({ viewBox: "0 0 24 24", width: 18, height: 18 })) {
    svg.setAttribute(name, String(value));
  }
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

/** Draw the bell into `root` (a button, a count and a panel); returns a redraw function.
 * `onRead()` is called when the notes are marked read (to remember it). */
export function mountBell(root, state, onRead = () => {}) {
  const count = el("span", "bell-count");
  count.dataset.testid = "bell-count";
  const open = el("button", "bell-button");
  open.type = "button";
  open.setAttribute("aria-expanded", "false");
  open.setAttribute("aria-controls", "bell-panel");
  open.append(bellIcon(), el("span", "visually-hidden", "Notifications"), count);
  const panel = el("section", "bell-panel");
  panel.id = "bell-panel";
  panel.hidden = true;
  panel.setAttribute("aria-label", "Notifications");
  const readAll = button("Mark all read", "link-button", () => {
    state.markAllRead();
    onRead();
    redraw();
  });
  const head = el("div", "bell-head");
  head.append(el("h2", "", "Notifications"), readAll);
  const list = el("ol", "bell-list");
  panel.append(head, list);
  root.replaceChildren(open, panel);

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
    open.setAttribute("aria-label", `Notifications, ${unread} unread`);
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
      const look = state.isUnread(note) ? "unread" : "";
      if (node.className !== look) node.className = look;
      next = node.nextSibling;
    }
  }

  function toggle(show) {
    panel.hidden = !show;
    open.setAttribute("aria-expanded", String(show));
    if (show) readAll.focus();
  }
  open.addEventListener("click", () => toggle(panel.hidden));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      toggle(false);
      open.focus();
    }
  });
  redraw();
  return redraw;
}

export function shortTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
