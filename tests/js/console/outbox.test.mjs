// The outbox panel's words, alone.
import { test } from "node:test";
import assert from "node:assert/strict";

import { age, relayWords } from "../../../leadrelay/web/console/outbox.js";

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
