// Who is watching: a provider's Echo client connects, soketi's channel_occupied webhook
// reaches POST /pusher/webhooks, and the admin API says "watching" within 2 s; it
// disconnects, and the API says when it was last seen.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { api, broadcastingConfig, daemon, echoFor, subscribed } from './lib.mjs';

async function seven() {
  const { body } = await api('GET', '/api/admin/providers');
  return body.providers.find((provider) => provider.id === 7);
}

test("a provider's Echo client shows as watching, then as last seen", async () => {
  assert.deepEqual(
    { watching: (await seven()).watching, last_seen: (await seven()).last_seen },
    { watching: false, last_seen: null },
  );
  const config = await broadcastingConfig(daemon.providers['7']);
  const echo = echoFor(config, daemon.providers['7']);
  try {
    await subscribed(echo.private('provider.7'));
    const subscribedAt = Date.now();
    let state = null;
    while (Date.now() - subscribedAt < 2000) {
      state = await seven();
      if (state.watching) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(state.watching, true, `not watching 2 s after subscribing: ${JSON.stringify(state)}`);
    assert.match(state.last_seen, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  } finally {
    echo.disconnect();
  }
  const leftAt = Date.now();
  let state = null;
  while (Date.now() - leftAt < 2000) {
    state = await seven();
    if (!state.watching) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(state.watching, false, `still watching 2 s after leaving: ${JSON.stringify(state)}`);
  assert.ok(Date.parse(state.last_seen) >= leftAt - 1000, state.last_seen);
});
