// The day at a glance moved by events (tally.js), and the other pure parts of the console's
// new views: what a change will do (actions.js), the status bar's shares (chart.js) and a
// timeline's words (panel.js).
import { test } from "node:test";
import assert from "node:assert/strict";

import { consequences, reverse } from "../../../leadrelay/web/console/actions.js";
import { segments, slug } from "../../../leadrelay/web/console/chart.js";
import { deliveryWords, story } from "../../../leadrelay/web/console/panel.js";
import { Tally } from "../../../leadrelay/web/console/tally.js";

const STATUSES = ["new", "contacted", "qualified", "converted", "lost"];
const CLOSED = ["converted", "lost"];
const names = new Map([[3, "Acme Plumbing"], [4, "Bolt Electric"]]);
const providerName = (id) => names.get(id);

function snapshot() {
  return {
    generated_at: "2026-12-06T10:00:00.000Z",
    statuses: { new: 2, contacted: 0, qualified: 0, converted: 0, lost: 0 },
    total: 2,
    open: 2,
    unassigned: { waiting: 1, oldest_created_at: "2026-12-06T08:00:00.000Z", oldest_age_seconds: 7200 },
    hours: [{ hour: "2026-12-06T10:00:00Z", created: 2 }],
    providers: [
      { id: 3, name: "Acme Plumbing", open: 1, waiting: 1, assigned_today: 1, median_contact_seconds: null, contacted: 0 },
      { id: 4, name: "Bolt Electric", open: 0, waiting: 0, assigned_today: 0, median_contact_seconds: null, contacted: 0 },
    ],
  };
}

const lead = (id, status, provider) => ({ id, status, provider_id: provider, created_at: "2026-12-06T10:00:30.000Z" });

test("a new lead, a status change and a reassignment move the counts", () => {
  const tally = new Tally(snapshot(), { role: "admin", statuses: STATUSES, closed: CLOSED });
  const at = "2026-12-06T10:01:00.000Z";
  tally.apply({ type: "lead.assigned", seq: 1, occurred_at: at, lead: lead(9, "new", 4) });
  let s = tally.stats;
  assert.equal(s.statuses.new, 3);
  assert.deepEqual([s.providers[1].open, s.providers[1].waiting, s.providers[1].assigned_today], [1, 1, 1]);
  assert.equal(s.hours[0].created, 3);
  const contacted = tally.apply({
    type: "lead.status.updated", seq: 2, occurred_at: at, lead: lead(9, "contacted", 4),
    old_status: "new", new_status: "contacted", changed_by: { role: "provider", provider_id: 4 },
  });
  assert.deepEqual(contacted, { changed: true, refetch: true }); // the median: ask the API
  assert.deepEqual([s.statuses.new, s.statuses.contacted, s.providers[1].waiting], [2, 1, 0]);
  const moved = tally.apply({ type: "lead.assigned", seq: 3, occurred_at: at, lead: lead(9, "contacted", 3) }, lead(9, "contacted", 4));
  assert.equal(moved.changed, true);
  assert.deepEqual([s.providers[0].open, s.providers[1].open, s.providers[0].assigned_today], [2, 0, 2]);
  const lost = tally.apply({
    type: "lead.status.updated", seq: 4, occurred_at: at, lead: lead(9, "lost", 3),
    old_status: "contacted", new_status: "lost", changed_by: { role: "admin", provider_id: null },
  });
  assert.deepEqual(lost, { changed: true, refetch: false });
  assert.deepEqual([s.open, s.providers[0].open, s.statuses.lost], [2, 1, 1]);
});

test("what the figures count already, or a reassignment it cannot place, is not counted twice", () => {
  const tally = new Tally(snapshot(), { role: "admin", statuses: STATUSES, closed: CLOSED });
  const old = tally.apply({ type: "lead.assigned", seq: 1, occurred_at: "2026-12-06T09:59:59.000Z", lead: lead(1, "new", null) });
  assert.deepEqual(old, { changed: false, refetch: false });
  const unknown = tally.apply({ type: "lead.assigned", seq: 2, occurred_at: "2026-12-06T10:05:00.000Z", lead: lead(1, "new", 4) });
  assert.deepEqual(unknown, { changed: false, refetch: true });
  assert.equal(tally.stats.statuses.new, 2);
});

test("waiting for a provider, and its oldest, follow the unassigned leads", () => {
  const tally = new Tally(snapshot(), { role: "admin", statuses: STATUSES, closed: CLOSED });
  const at = "2026-12-06T10:02:00.000Z";
  const gone = tally.apply({ type: "lead.assigned", seq: 2, occurred_at: at, lead: lead(5, "new", 3) }, lead(5, "new", null));
  assert.equal(tally.stats.unassigned.waiting, 0);
  assert.equal(tally.stats.unassigned.oldest_created_at, null);
  assert.equal(gone.refetch, false);
  tally.apply({ type: "lead.assigned", seq: 1, occurred_at: at, lead: lead(6, "new", null) });
  assert.equal(tally.stats.unassigned.waiting, 1);
  assert.equal(tally.stats.unassigned.oldest_created_at, lead(6).created_at);
});

test("a provider's tally counts its own leads only", () => {
  const own = { generated_at: "2026-12-06T10:00:00.000Z", statuses: { new: 1 }, open: 1, waiting: 1, assigned_today: 1 };
  const tally = new Tally(own, { role: "provider", providerId: 3, statuses: STATUSES, closed: CLOSED });
  const at = "2026-12-06T10:03:00.000Z";
  tally.apply({ type: "lead.assigned", seq: 1, occurred_at: at, lead: lead(7, "new", 3) });
  tally.apply({ type: "lead.assigned", seq: 1, occurred_at: at, lead: lead(8, "new", 4) });
  assert.deepEqual([tally.stats.open, tally.stats.waiting, tally.stats.assigned_today], [2, 2, 2]);
});

test("a change says what it will do, and its undo is the change back", () => {
  const jane = { id: 42, name: "Jane Doe", status: "new", provider_id: 3 };
  assert.deepEqual(consequences(jane, { provider_id: 4 }, providerName, "admin"), {
    question: "Reassign Lead 42 (Jane Doe) to Bolt Electric?",
    detail: "Bolt Electric will be notified, and Acme Plumbing will no longer see it.",
    done: "Lead 42 (Jane Doe) reassigned to Bolt Electric.",
  });
  assert.equal(consequences(jane, { status: "contacted" }, providerName, "admin").detail, "Acme Plumbing will be notified.");
  assert.equal(consequences({ ...jane, provider_id: null }, { status: "lost" }, providerName, "admin").detail, "It has no provider: only admins will see the change.");
  assert.equal(consequences({ ...jane, name: "" }, { status: "lost" }, providerName, "provider").question, "Change Lead 42 from new to lost?");
  assert.deepEqual(reverse(jane, { provider_id: 4 }), { provider_id: 3 });
  assert.deepEqual(reverse(jane, { status: "lost", provider_id: null }), { status: "new", provider_id: 3 });
});

test("the status bar's shares add up to its width", () => {
  const parts = segments([["new", 1], ["lost", 3], ["qualified", 0]], 100);
  assert.deepEqual(parts.map((p) => [p.x, p.width]), [[0, 25], [25, 75], [100, 0]]);
  assert.deepEqual(segments([["new", 0]], 100).map((p) => p.width), [0]);
  assert.equal(slug("Won (paid)"), "won-paid-");
});

test("a timeline reads who changed what, and each delivery", () => {
  const data = { type: "lead.status.updated", seq: 2, lead: { id: 1, provider_id: 3 }, old_status: "new", new_status: "contacted", changed_by: { role: "provider", provider_id: 3 } };
  assert.equal(story(data, providerName), "new → contacted, by Acme Plumbing");
  assert.equal(story({ type: "lead.assigned", seq: 1, lead: { id: 1, provider_id: null } }, providerName), "Created, assigned to no provider");
  assert.equal(story({ ...data, changed_by: { role: "crm", provider_id: null } }, providerName), "new → contacted, by the CRM");
  assert.deepEqual(deliveryWords({ state: "dead", last_error: "HTTP 401" }), ["bad", "dead: HTTP 401"]);
  assert.deepEqual(deliveryWords({ state: "pending", attempts: 0 }), ["wait", "pending"]);
  assert.equal(deliveryWords({ state: "retrying", attempts: 2, last_error: "timeout" })[1], "retrying (tried 2): timeout");
});
