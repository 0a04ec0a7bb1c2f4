// The bell's unread state and its words, alone.
import { test } from "node:test";
import assert from "node:assert/strict";

import { BellState, describe } from "../../../leadrelay/web/console/bell.js";

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
    "Lead 42: new → contacted, by provider 3",
  );
  assert.equal(
    describe(status("c", lead, "new", "lost", { role: "admin", provider_id: null })),
    "Lead 42: new → lost, by an admin",
  );
  assert.equal(
    describe(status("d", lead, "new", "won", { role: "crm", provider_id: null })),
    "Lead 42: new → won, by the CRM",
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
