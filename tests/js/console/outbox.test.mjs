// The outbox panel's words, alone.
import { test } from "node:test";
import assert from "node:assert/strict";

import { age, deadWhat, relayWords } from "../../../leadrelay/web/console/outbox.js";

const held = {
  pusher_enabled: true,
  relay_paused_reason: null,
  relay_holder: "serve pid 42 on box",
  relay_lease: { held: true, renewed_seconds_ago: 0.4 },
};

test("the relay's holder, its pause and its switch read as words", () => {
  assert.equal(relayWords(held), "relaying, held by serve pid 42 on box, renewed 0.4 s ago");
  assert.equal(
    relayWords({ ...held, relay_paused_reason: "wrong key or secret" }),
    "paused: wrong key or secret; held by serve pid 42 on box, renewed 0.4 s ago",
  );
  assert.equal(
    relayWords({ ...held, relay_holder: null, relay_lease: { held: false } }),
    "no daemon holds the relay: events wait in the outbox",
  );
  assert.match(relayWords({ ...held, pusher_enabled: false }), /^relaying is switched off/);
});

test("the oldest pending event's age reads in a fitting unit", () => {
  assert.equal(age(null), "none pending");
  assert.equal(age(12.4), "12 s");
  assert.equal(age(600), "10 min");
  assert.equal(age(5400), "1.5 h");
});

test("a dead letter names its lead, or the channel an app triggered on", () => {
  const lead = { id: 7, type: "lead.assigned", kind: "lead", lead_id: 3, channels: ["admin"], seq: 1 };
  assert.equal(deadWhat(lead), "#7 lead.assigned, lead 3 (seq 1)");
  const app = { id: 9, type: "order.paid", kind: "pusher_api", lead_id: null, channels: ["orders"], seq: 4 };
  assert.equal(deadWhat(app), "#9 order.paid, channel orders (seq 4)");
});
