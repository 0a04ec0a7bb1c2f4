// The live feed's catch-up and gap handling, with the events API played by a fake (no socket).
import { test } from "node:test";
import assert from "node:assert/strict";

import { LiveFeed, feedChannel } from "../../../leadrelay/web/console/live.js";

function event(id, leadId, seq) {
  return { event_id: id, type: "lead.assigned", seq, lead: { id: leadId, updated_at: "t" } };
}

function item(rowId, data) {
  return { id: rowId, event_id: data.event_id, event: data.type, lead_id: data.lead.id, seq: data.seq, data };
}

function feedWith(answer, extra = {}) {
  const applied = [];
  const calls = [];
  const api = {
    token: "t",
    async get(path, params) {
      calls.push({ path, ...params });
      return answer(path, params);
    },
  };
  const me = { role: "admin", provider_id: null, channel: "admin", events_after: 10 };
  const live = new LiveFeed({
    api,
    me,
    config: {},
    onEvent: (data) => applied.push(data.event_id),
    onState: () => {},
    ...extra,
  });
  return { live, applied, calls };
}

test("catch-up applies what came after the cursor, once, and moves the cursor", async () => {
  const { live, applied, calls } = feedWith((path, params) =>
    params.after === 10
      ? { events: [item(11, event("a", 1, 1)), item(12, event("b", 2, 1))], next_after: 12 }
      : { events: [], next_after: params.after },
  );
  await live.live(event("a", 1, 1)); // it came live before the catch-up
  await live.catchUp();
  assert.deepEqual(applied, ["a", "b"]);
  assert.equal(live.feed.cursor, 12);
  assert.equal(calls[0].path, "/api/admin/events");
  await live.catchUp(); // a second reconnect: nothing new, nothing twice
  assert.deepEqual(applied, ["a", "b"]);
});

test("a live event whose seq skips one fetches its lead's events first", async () => {
  const first = event("a", 5, 1);
  const missed = event("b", 5, 2);
  const { live, applied, calls } = feedWith((path, params) =>
    params.lead_id === 5 ? { events: [item(1, first), item(2, missed)], next_after: 2 } : null,
  );
  await live.live(first);
  await live.live(event("c", 5, 3));
  assert.deepEqual(applied, ["a", "b", "c"]);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].lead_id, 5);
});

test("an expired cursor (410) reloads and goes on from the cursor of now", async () => {
  let stale = 0;
  const { live, applied } = feedWith(
    (path, params) => {
      if (params.after === 10) throw Object.assign(new Error("gone"), { status: 410 });
      return params.after === 50
        ? { events: [item(51, event("z", 9, 1))], next_after: 51 }
        : { events: [], next_after: params.after };
    },
    { onStale: async () => ((stale += 1), 50) },
  );
  await live.catchUp();
  assert.equal(stale, 1);
  assert.deepEqual(applied, ["z"]);
  assert.equal(live.feed.cursor, 51);
});

test("the feed's channel follows the daemon's broadcast mode", () => {
  const admin = { role: "admin", provider_id: null, channel: "admin" };
  const provider = { role: "provider", provider_id: 3, channel: "private-provider.3" };
  const encrypted = {
    channels: { admin: "private-encrypted-admin", provider: "private-encrypted-provider.{id}" },
  };
  assert.equal(feedChannel(admin, encrypted), "private-encrypted-admin");
  assert.equal(feedChannel(provider, encrypted), "private-encrypted-provider.3");
  assert.equal(feedChannel(provider, {}), "private-provider.3");
});
