// The console: sign in with a token, then the admin or the provider view, kept live.

import { Api, forgetToken, saveToken, savedToken } from "./api.js";
import { BellState, mountBell } from "./bell.js";
import { isNewer } from "./feed.js";
import { LiveFeed } from "./live.js";
import { OutboxPanel } from "./outbox.js";
import { LeadTable } from "./table.js";

const $ = (id) => document.getElementById(id);
const OUTBOX_REFRESH_MS = 5000;
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
  for (const id of ["who", "connection", "bell", "sign-out"]) $(id).hidden = true;
  say("signin-message", message);
  $("token").value = "";
  $("token").focus();
}

function showConnection(state, detail) {
  if (!session) return;
  session.connection = { state, detail };
  drawConnection();
}

function drawConnection() {
  const { state, detail } = session.connection;
  const words = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    failed: "Live updates off",
    error: "Connected",
  };
  let text = words[state] || state;
  if ((state === "failed" || state === "error") && detail) text = `${text}: ${detail}`;
  const relay = session.outbox && session.outbox.status;
  let look = state === "connected" || state === "error" ? "ok" : state === "failed" ? "bad" : "wait";
  if (relay && relay.relay_paused_reason) {
    text += ` · relay paused: ${relay.relay_paused_reason}`;
    look = "bad";
  } else if (relay && !relay.pusher_enabled) {
    text += " · relaying switched off";
    look = "bad";
  }
  const node = $("connection");
  node.dataset.state = look;
  node.dataset.connection = state;
  $("connection-text").textContent = text;
  node.hidden = false;
}

function flash(text) {
  say("view-message", text);
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => say("view-message", ""), 8000);
}

async function loadLeads() {
  const { api, me, table } = session;
  const path = me.role === "admin" ? "/api/admin/leads" : "/api/provider/leads";
  const params = { status: table.filters.status };
  if (me.role === "admin" && table.filters.provider_id && table.filters.provider_id !== "none") {
    params.provider_id = table.filters.provider_id;
  }
  const { rows, complete } = await api.allPages(path, params, "leads");
  table.setLeads(rows.filter((lead) => table.matches(lead)));
  say("list-note", complete ? "" : `Showing the first ${rows.length} leads of this filter.`);
}

/**
 * The lead as the table should hold it. With broadcast_personal_data = false the events leave
 * out name, email and phone: the row keeps what it has, and a lead new to the table is read
 * from the API.
 */
async function fullLead(lead, row) {
  if ("name" in lead) return lead;
  if (row) return { ...row, ...lead };
  const base = session.me.role === "admin" ? "/api/admin/leads" : "/api/provider/leads";
  try {
    return await session.api.get(`${base}/${lead.id}`);
  } catch {
    return { name: "", email: null, phone: null, ...lead };
  }
}

async function applyEvent(event) {
  if (!session) return;
  const { me, table } = session;
  const known = table.leads.find((item) => item.id === event.lead.id);
  const lead = await fullLead(event.lead, known);
  if (!session) return;
  const data = lead === event.lead ? event : { ...event, lead };
  const { bell } = session;
  const ours = me.role === "admin" || lead.provider_id === me.provider_id;
  const row = table.leads.find((item) => item.id === lead.id);
  if (ours && isNewer(lead, row)) table.upsert(lead);
  bell.add(data, (id) => session.providers.get(id));
  session.redrawBell();
  if (session.outbox) scheduleOutbox(800);
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
  drawConnection();
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
  session = { api, me, providers: new Map(), connection: { state: "connecting" } };
  $("signin").hidden = true;
  $("view").hidden = false;
  $("sign-out").hidden = false;
  $("who").hidden = false;
  $("who").textContent = me.role === "admin" ? "Admin" : `${me.name || "Provider"} · provider ${me.provider_id}`;
  document.body.dataset.role = me.role;
  drawConnection();
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
  const statuses = me.statuses || ["new", "contacted", "qualified", "converted", "lost"];
  const statusFilter = $("filter-status");
  statusFilter.replaceChildren(new Option("All", ""), ...statuses.map((s) => new Option(s, s)));
  const providerFilter = $("filter-provider");
  providerFilter.replaceChildren(new Option("All", ""), new Option("None", "none"));
  for (const [id, name] of session.providers) providerFilter.append(new Option(name, String(id)));
  $("filter-provider-label").hidden = me.role !== "admin";
  const base = me.role === "admin" ? "/api/admin/leads" : "/api/provider/leads";
  session.table = new LeadTable($("table"), {
    role: me.role,
    statuses,
    providers: session.providers,
    onChange: (id, change) => api.patch(`${base}/${id}`, change),
    onError: flash,
  });
  session.bell = new BellState();
  $("bell").hidden = false;
  session.redrawBell = mountBell($("bell"), session.bell);
  if (me.role === "admin") {
    $("outbox").hidden = false;
    session.outbox = new OutboxPanel($("outbox"), api, flash);
    refreshOutbox();
  } else {
    $("outbox").hidden = true;
  }
  await loadLeads();
  let config;
  try {
    config = await api.get("/broadcasting/config");
  } catch (failure) {
    showConnection("failed", failure.message);
    return;
  }
  if (!session) return;
  session.live = new LiveFeed({
    api,
    me,
    config,
    onEvent: applyEvent,
    onState: showConnection,
    onStale: reloadFromNow,
  });
  session.live.start();
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
    clearTimeout(session.outboxTimer);
  }
  session = null;
  forgetToken();
  $("table").replaceChildren();
  $("outbox").replaceChildren();
  $("bell").replaceChildren();
  delete document.body.dataset.role;
  showSignIn(message);
}

function onFilter() {
  if (!session || !session.table) return;
  session.table.filters = {
    status: $("filter-status").value,
    provider_id: $("filter-provider").value,
  };
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
