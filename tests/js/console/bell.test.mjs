// The bell's unread state and its words, alone.
import { test } from "node:test";
import assert from "node:assert/strict";

import { BellMemory, BellState, describe, loadHistory } from "../../../leadrelay/web/console/bell.js";

const names = new Map([[3, "Acme Plumbing"]]);
const providerName = (id) => names.get(id);

function assigned(id, seq, lead) {
  return { event_id: id, type: "lead.assigned", seq, occurred_at: "2026-12-01T10:00:00.000Z", lead };
}

function status(id, lead, from, to, by) {
  return {
    event_id: id,
    type: "lead.status.updated",
    seq: 2,
    occurred_at: "2026-12-01T10:00:01.000Z",
    lead,
    old_status: from,
    new_status: to,
    changed_by: by,
  };
}

test("events read as the console's notifications", () => {
  const lead = { id: 42, name: "Jane Doe", provider_id: 3 };
  assert.equal(describe(assigned("a", 1, lead), providerName), "New lead Jane Doe → Acme Plumbing");
  assert.equal(
    describe(status("b", lead, "new", "contacted", { role: "provider", provider_id: 3 }), providerName),
    "Lead 42 (Jane Doe): new → contacted, by Acme Plumbing",
  );
  assert.equal(
    describe(status("c", lead, "new", "lost", { role: "admin", provider_id: null })),
    "Lead 42 (Jane Doe): new → lost, by an admin",
  );
  assert.equal(
    describe(status("d", lead, "new", "won", { role: "crm", provider_id: null })),
    "Lead 42 (Jane Doe): new → won, by the CRM",
  );
  assert.equal(
    describe(assigned("e", 4, { id: 42, name: "Jane Doe", provider_id: 9 }), providerName),
    "Lead 42 (Jane Doe) assigned to provider 9",
  );
  assert.equal(describe(assigned("f", 1, { id: 5, name: "X", provider_id: null })), "New lead X → no provider");
});

test("an erased lead (empty name) is named by its id", () => {
  assert.equal(describe(assigned("c", 3, { id: 9, name: "", provider_id: 3 }), providerName), "Lead 9 assigned to Acme Plumbing");
  assert.equal(describe(assigned("a", 1, { id: 7, name: "", provider_id: null })), "New lead #7 → no provider");
  assert.equal(describe(assigned("b", 1, { id: 8, name: null, provider_id: null })), "New lead #8 → no provider");
});

test("hostile text stays the same characters (drawing it as text is the page's job)", () => {
  const text = describe(assigned("a", 1, { id: 1, name: "<img src=x onerror=alert(1)>", provider_id: null }));
  assert.equal(text, "New lead <img src=x onerror=alert(1)> → no provider");
});

test("unread counts new notifications until all are marked read", () => {
  const bell = new BellState();
  const lead = { id: 1, name: "A", provider_id: null };
  assert.equal(bell.unread, 0);
  assert.equal(bell.add(assigned("a", 1, lead)), true);
  assert.equal(bell.add(assigned("b", 1, { ...lead, id: 2 })), true);
  assert.equal(bell.unread, 2);
  bell.markAllRead();
  assert.equal(bell.unread, 0);
  bell.add(assigned("c", 1, { ...lead, id: 3 }));
  assert.equal(bell.unread, 1);
  assert.deepEqual(bell.notes.map((n) => n.event_id), ["c", "b", "a"]); // newest first
});

test("the same event never rings twice", () => {
  const bell = new BellState();
  const data = assigned("a", 1, { id: 1, name: "A", provider_id: null });
  bell.add(data);
  assert.equal(bell.add(data), false);
  assert.equal(bell.unread, 1);
});

test("the panel keeps only the latest notifications", () => {
  const bell = new BellState(3);
  for (const id of ["a", "b", "c", "d"]) bell.add(assigned(id, 1, { id: 1, name: "A", provider_id: null }));
  assert.deepEqual(bell.notes.map((n) => n.event_id), ["d", "c", "b"]);
  assert.equal(bell.unread, 3);
});

test("a status change by an unknown provider, or of an erased lead, still reads", () => {
  const erased = { id: 9, name: "", provider_id: 5 };
  assert.equal(
    describe(status("x", erased, "new", "lost", { role: "provider", provider_id: 5 })),
    "Lead 9: new → lost, by provider 5",
  );
});

test("the bell keeps the newest 100, newest first, and remembers where it let go", () => {
  const bell = new BellState(3);
  for (const id of ["01", "03", "02", "05", "04"]) bell.add(assigned(id, 1, { id: 1, name: "A", provider_id: null }));
  assert.deepEqual(bell.notes.map((n) => n.event_id), ["05", "04", "03"]);
  assert.equal(bell.dropped, "02");
});

test("read and unread come back from the ids kept in storage, and nothing personal is kept", () => {
  const storage = new Map();
  const fake = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v) };
  const me = { role: "provider", provider_id: 3 };
  const bell = new BellState();
  bell.add(assigned("0190a", 1, { id: 1, name: "Jane Doe", provider_id: 3 }));
  bell.add(assigned("0190b", 1, { id: 2, name: "John Roe", provider_id: 3 }));
  bell.markAllRead();
  bell.add(assigned("0190c", 1, { id: 3, name: "Ann Poe", provider_id: 3 }));
  new BellMemory(fake, me).save(bell, 41);
  const saved = storage.get("leadrelay.bell.provider.3");
  assert.deepEqual(JSON.parse(saved), { after: 41, readUpTo: "0190b" });
  assert.ok(!/Jane|John|Ann/.test(saved));
  const again = new BellState(undefined, new BellMemory(fake, me).load().readUpTo);
  for (const id of ["0190a", "0190b", "0190c"]) again.add(assigned(id, 1, { id: 1, name: "x", provider_id: 3 }));
  assert.equal(again.unread, 1);
  assert.deepEqual(new BellMemory({ getItem: () => "not json" }, me).load(), { after: null, readUpTo: "" });
});

test("history pages from the bell's own cursor, and starts afresh when it is gone", async () => {
  const calls = [];
  const events = (ids) => ids.map((id) => ({ id, data: assigned(`e${id}`, 1, { id, name: "N", provider_id: null }) }));
  const api = {
    async get(path, params) {
      calls.push(params.after);
      if (params.after === "gone") throw Object.assign(new Error("gone"), { status: 410 });
      return { events: events([params.after + 1, params.after + 2]), next_after: params.after + 2 };
    },
  };
  const found = await loadHistory(api, "/api/admin/events", 5, 90);
  assert.deepEqual(found.events.map((d) => d.event_id), ["e6", "e7"]);
  assert.equal(found.after, 5);
  const lost = await loadHistory(api, "/api/admin/events", "gone", 90);
  assert.deepEqual(calls.slice(-2), ["gone", 90]);
  assert.equal(lost.after, 90);
});
