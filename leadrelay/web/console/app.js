// The console: sign in with a token, then the admin's or the provider's view, kept live.
// Each part is a module of its own; this one signs in and out and hands every event to them.

import { Actions } from "./actions.js";
import { Api, forgetToken, saveToken, savedToken } from "./api.js";
import { BellMemory, BellState, loadHistory, mountBell } from "./bell.js";
import { drawConnection, showPusherMissing } from "./connection.js";
import { leadLabel } from "./dom.js";
import { isNewer } from "./feed.js";
import { Glance } from "./glance.js";
import { LiveFeed } from "./live.js";
import { OutboxPanel } from "./outbox.js";
import { LeadPanel } from "./panel.js";
import { LIMIT, SearchBox } from "./search.js";
import { LeadTable } from "./table.js";
import { WaitingList } from "./waiting.js";

const $ = (id) => document.getElementById(id);
const OUTBOX_REFRESH_MS = 5000;
const LIST_PAGES = 4; // the newest 2,000 leads; a search finds the others
const WRONG_TOKEN = "That token was not accepted: it is wrong or has been revoked.";

let session = null;

function say(id, text) {
  const node = $(id);
  node.textContent = text || "";
  node.hidden = !text;
}

function showSignIn(message) {
  $("signin").hidden = false;
  $("view").hidden = true;
  for (const id of ["who", "connection", "bell", "sign-out", "banner"]) $(id).hidden = true;
  say("signin-message", message);
  $("token").value = "";
  $("token").focus();
}

function showConnection(state, detail) {
  if (!session) return;
  session.connection = { state, detail };
  drawConnection($("connection"), session.connection, session.outbox && session.outbox.status);
}

function flash(text) {
  say("view-message", text);
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => say("view-message", ""), 8000);
}

function leadsPath() {
  return session.me.role === "admin" ? "/api/admin/leads" : "/api/provider/leads";
}

function filters() {
  const { me, table } = session;
  const params = { status: table.filters.status, order: "newest" };
  if (me.role === "admin" && table.filters.provider_id && table.filters.provider_id !== "none") {
    params.provider_id = table.filters.provider_id;
  }
  return params;
}

/** The list, or what the search box finds: newest first. */
async function loadLeads(query = session.search.query) {
  const { api, table } = session;
  if (query) {
    const answer = await api.get(leadsPath(), { ...filters(), q: query, limit: LIMIT });
    if (!session || session.search.query !== query) return; // typed on meanwhile
    table.setLeads(answer.leads.filter((lead) => table.matches(lead)), `No lead matches “${query}”.`);
    const more = answer.next_after === null ? "" : ` (the newest ${LIMIT})`;
    const partial = answer.partial ? "; the newest leads are still being indexed, some may be missing" : "";
    say("list-note", `${answer.leads.length} found for “${query}”${more}${partial}.`);
    return;
  }
  const { rows, complete } = await api.allPages(leadsPath(), filters(), "leads", { maxPages: LIST_PAGES });
  table.setLeads(rows.filter((lead) => table.matches(lead)));
  say("list-note", complete ? "" : `Showing the newest ${rows.length} leads: search to find older ones.`);
}

/**
 * The lead as the table should hold it. With broadcast_personal_data = false the events leave
 * out name, email and phone: the row keeps what it has, and a lead new to the table is read
 * from the API.
 */
async function fullLead(lead, row) {
  if ("name" in lead) return lead;
  if (row) return { ...row, ...lead };
  try {
    return await session.api.get(`${leadsPath()}/${lead.id}`);
  } catch {
    return { name: "", email: null, phone: null, ...lead };
  }
}

async function applyEvent(event) {
  if (!session) return;
  const { me, table, search } = session;
  const before = table.find(event.lead.id);
  const lead = await fullLead(event.lead, before);
  if (!session) return;
  const data = lead === event.lead ? event : { ...event, lead };
  const ours = me.role === "admin" || lead.provider_id === me.provider_id;
  if (ours && isNewer(lead, before) && (!search.active || before)) table.upsert(lead);
  search.touched();
  session.bell.add(data, providerName);
  session.redrawBell();
  session.memory.save(session.bell, session.historyAfter);
  session.glance.apply(data, before ? { ...before } : null);
  if (session.panel.leadId === lead.id) session.panel.refresh();
  if (session.waiting) session.waiting.later();
  if (session.outbox) scheduleOutbox(800);
}

function providerName(id) {
  return session.providers.get(id) || `provider ${id}`;
}

function scheduleOutbox(delay) {
  clearTimeout(session.outboxTimer);
  session.outboxTimer = setTimeout(refreshOutbox, delay);
}

/** Who is watching changes on its own (Pusher's channel webhooks): read it with the outbox. */
async function refreshPresence() {
  if (!session || !session.table) return;
  try {
    const { providers } = await session.api.get("/api/admin/providers");
    if (session && session.table) session.table.setPresence(providers);
  } catch (failure) {
    flash(`Who is watching could not be read: ${failure.message}`);
  }
}

async function refreshOutbox() {
  if (!session || !session.outbox) return;
  try {
    await session.outbox.refresh();
  } catch (failure) {
    flash(`The outbox could not be read: ${failure.message}`);
  }
  await refreshPresence();
  if (!session) return;
  showConnection(session.connection.state, session.connection.detail);
  scheduleOutbox(OUTBOX_REFRESH_MS);
}

async function signIn(token) {
  let revoked = false;
  const api = new Api(token, () => {
    if (session && !revoked) {
      revoked = true;
      signOut("Your token is no longer accepted (revoked?); sign in again.");
    }
  });
  let me;
  try {
    me = await api.get("/api/me");
  } catch (failure) {
    forgetToken();
    showSignIn(failure.status === 401 ? WRONG_TOKEN : failure.message);
    return;
  }
  saveToken(token);
  me.statuses = me.statuses || ["new", "contacted", "qualified", "converted", "lost"];
  session = { api, me, providers: new Map(), connection: { state: "connecting" } };
  $("signin").hidden = true;
  $("view").hidden = false;
  $("sign-out").hidden = false;
  $("who").hidden = false;
  $("who").textContent = me.role === "admin" ? "Admin" : `${me.name || "Provider"} · provider ${me.provider_id}`;
  document.body.dataset.role = me.role;
  showConnection("connecting");
  try {
    await startView();
  } catch (failure) {
    if (session) flash(`The console could not load: ${failure.message}`);
  }
}

async function startView() {
  const { api, me } = session;
  if (me.role === "admin") {
    const { providers } = await api.get("/api/admin/providers");
    for (const provider of providers) session.providers.set(provider.id, provider.name);
  } else if (me.provider_id !== null) {
    session.providers.set(me.provider_id, me.name || `provider ${me.provider_id}`);
  }
  $("filter-status").replaceChildren(new Option("All", ""), ...me.statuses.map((s) => new Option(s, s)));
  const providerFilter = $("filter-provider");
  providerFilter.replaceChildren(new Option("All", ""), new Option("None", "none"));
  for (const [id, name] of session.providers) providerFilter.append(new Option(name, String(id)));
  $("filter-provider-label").hidden = me.role !== "admin";
  $("legend").hidden = me.role !== "admin";
  const patch = (id, change) => api.patch(`${leadsPath()}/${id}`, change);
  session.actions = new Actions($("confirm"), $("toasts"), { patch, providerName, role: me.role, onError: flash });
  const change = (lead, what) => session.actions.change(lead, what);
  const open = (leadId, opener) => session.panel.open(leadId, opener);
  session.table = new LeadTable($("table"), { role: me.role, statuses: me.statuses, providers: session.providers, onChange: change, onOpen: open });
  session.panel = new LeadPanel($("panel"), { api, me, providers: session.providers, onChange: change, onErase: erase, onError: flash });
  session.search = new SearchBox($("search"), (query) => loadLeads(query).catch((failure) => flash(`The search failed: ${failure.message}`)));
  session.glance = new Glance($("glance"), { api, me, onError: flash, presence: () => session.table.presence });
  await startBell();
  if (me.role === "admin") {
    $("outbox").hidden = false;
    session.outbox = new OutboxPanel($("outbox"), api, flash);
    refreshOutbox();
  } else {
    $("outbox").hidden = true;
    session.waiting = new WaitingList($("waiting"), { api, first: me.statuses[0], onOpen: open, onError: flash });
    session.waiting.refresh();
  }
  session.glance.refresh();
  $("search").focus(); // the sign-in form had the focus: finding a lead is what comes next
  await loadLeads();
  await startLive();
}

/** The bell, with the notes since its own cursor and what was read, kept across reloads. */
async function startBell() {
  const { api, me } = session;
  session.memory = new BellMemory(localStorage, me);
  const saved = session.memory.load();
  const path = me.role === "admin" ? "/api/admin/events" : "/api/provider/events";
  const now = me.events_after || 0;
  const fallback = me.role === "admin" ? Math.max(0, now - 100) : now;
  const history = await loadHistory(api, path, saved.after, fallback).catch(() => ({ events: [], after: now }));
  session.bell = new BellState(undefined, saved.readUpTo);
  for (const data of history.events) session.bell.add(data, providerName);
  if (saved.after === null && session.bell.notes.length) session.bell.markAllRead(); // a first visit
  session.historyAfter = history.after;
  session.memory.save(session.bell, history.after);
  $("bell").hidden = false;
  session.redrawBell = mountBell($("bell"), session.bell, () => session.memory.save(session.bell, session.historyAfter));
}

async function startLive() {
  const { api, me } = session;
  if (typeof window.Pusher !== "function") {
    showPusherMissing($("banner"));
    showConnection("failed");
    return;
  }
  let config;
  try {
    config = await api.get("/broadcasting/config");
  } catch (failure) {
    showConnection("failed", failure.message);
    return;
  }
  if (!session) return;
  session.live = new LiveFeed({ api, me, config, onEvent: applyEvent, onState: showConnection, onStale: reloadFromNow });
  session.live.start();
}

async function erase(lead) {
  const { actions, api } = session;
  const yes = await actions.ask(
    `Erase the personal data of ${leadLabel(lead)}?`,
    "Its name, email, phone, source and notes are removed for good, from the lead and its stored events; its status and history stay. This cannot be undone.",
    "Erase",
  );
  if (!yes) return false;
  try {
    const erased = await api.request("DELETE", `/api/admin/leads/${lead.id}`);
    session.table.upsert(erased);
    actions.toast(`${leadLabel(lead)}: personal data erased.`);
    return true;
  } catch (failure) {
    flash(`${leadLabel(lead)} was not erased: ${failure.message}`);
    return false;
  }
}

/** The list afresh and the events cursor of this moment (the old one has expired). */
async function reloadFromNow() {
  const now = await session.api.get("/api/me");
  await loadLeads();
  return now.events_after || 0;
}

function signOut(message) {
  if (session) {
    if (session.live) session.live.stop();
    for (const part of [session.glance, session.table]) if (part) part.stop();
    if (session.panel) session.panel.close();
    clearTimeout(session.outboxTimer);
  }
  session = null;
  forgetToken();
  for (const id of ["table", "outbox", "bell", "glance", "waiting", "toasts"]) $(id).replaceChildren();
  $("search").value = "";
  delete document.body.dataset.role;
  showSignIn(message);
}

function onFilter() {
  if (!session || !session.table) return;
  session.table.filters = { status: $("filter-status").value, provider_id: $("filter-provider").value };
  loadLeads().catch((failure) => flash(`The leads could not be loaded: ${failure.message}`));
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  say("signin-message", "Signing in…");
  signIn(token);
});
$("sign-out").addEventListener("click", () => signOut("Signed out: the token is forgotten."));
$("filter-status").addEventListener("change", onFilter);
$("filter-provider").addEventListener("change", onFilter);

const remembered = savedToken();
if (remembered) {
  $("signin").hidden = true;
  signIn(remembered);
} else {
  showSignIn("");
}
