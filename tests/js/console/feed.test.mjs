// The console's event bookkeeping, alone: duplicates, gaps, the cursor, stale rows.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Feed, eventData, isNewer, unseen } from "../../../leadrelay/web/console/feed.js";

function event(id, leadId, seq, updatedAt = "2026-12-01T10:00:00.000Z") {
  return { event_id: id, type: "lead.assigned", seq, lead: { id: leadId, updated_at: updatedAt } };
}

test("an event is accepted once; the same event_id again is a duplicate", () => {
  const feed = new Feed();
  assert.equal(feed.accept(event("a", 1, 1)), true);
  assert.equal(feed.isDuplicate(event("a", 1, 1)), true);
  assert.equal(feed.accept(event("a", 1, 1)), false);
  assert.equal(feed.accept(event("b", 1, 2)), true);
});

test("a seq that skips one of a known lead is a gap; a lead first seen is not", () => {
  const feed = new Feed();
  assert.equal(feed.hasGap(event("x", 7, 5)), false); // nothing known of lead 7 yet
  feed.accept(event("a", 1, 1));
  assert.equal(feed.hasGap(event("b", 1, 2)), false);
  assert.equal(feed.hasGap(event("c", 1, 3)), true);
  feed.accept(event("c", 1, 3)); // applied after fetching: the lead's seq moves to 3
  assert.equal(feed.hasGap(event("d", 1, 4)), false);
  feed.accept(event("b", 1, 2)); // a late one never moves the seq back
  assert.equal(feed.lastSeq.get(1), 3);
});

test("fetched items and live data are the same event to the feed", () => {
  const data = event("a", 1, 1);
  const item = { id: 12, event_id: "a", event: "lead.assigned", lead_id: 1, seq: 1, data };
  assert.equal(eventData(item), data);
  assert.equal(eventData(data), data);
  const feed = new Feed();
  feed.accept(data); // it came live first
  assert.deepEqual(unseen(feed, [item, { ...item, id: 13, event_id: "b", data: event("b", 1, 2) }]), [
    event("b", 1, 2),
  ]);
});

test("a fetched page with the same event twice yields it once, in the page's order", () => {
  const feed = new Feed();
  const page = [event("a", 1, 1), event("b", 2, 1), event("a", 1, 1), event("c", 1, 2)];
  assert.deepEqual(unseen(feed, page).map((e) => e.event_id), ["a", "b", "c"]);
});

test("the cursor only moves forward", () => {
  const feed = new Feed({ cursor: 10 });
  feed.advance(15);
  feed.advance(12);
  feed.advance(undefined);
  assert.equal(feed.cursor, 15);
});

test("the feed forgets the oldest event_ids past its memory, not the newest", () => {
  const feed = new Feed({ remember: 2 });
  feed.accept(event("a", 1, 1));
  feed.accept(event("b", 2, 1));
  feed.accept(event("c", 3, 1));
  assert.equal(feed.isDuplicate(event("a", 1, 1)), false);
  assert.equal(feed.isDuplicate(event("c", 3, 1)), true);
});

test("a row is replaced only by a lead at least as new", () => {
  const row = { id: 1, updated_at: "2026-12-01T10:00:00.500Z" };
  assert.equal(isNewer({ updated_at: "2026-12-01T10:00:00.400Z" }, row), false);
  assert.equal(isNewer({ updated_at: "2026-12-01T10:00:00.500Z" }, row), true);
  assert.equal(isNewer({ updated_at: "2026-12-01T10:00:01.000Z" }, row), true);
  assert.equal(isNewer({ updated_at: "2026-12-01T10:00:00.000Z" }, undefined), true);
});
