// Echo's `bearerToken` option (2.5.0). It writes the header into Echo's default `auth`
// object, which every instance without its own `auth` shares: so this file, a process of
// its own under `node --test`, holds the only Echo instance that uses it.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Echo, Pusher, broadcastingConfig, createLead, daemon, subscribed, waitFor } from './lib.mjs';

test("Echo's bearerToken authorises Echo.private('provider.7')", async () => {
  const config = await broadcastingConfig(daemon.providers['7']);
  const echo = new Echo({
    broadcaster: 'pusher',
    Pusher,
    key: config.key,
    cluster: config.cluster,
    wsHost: config.ws_host,
    wsPort: config.ws_port,
    forceTLS: config.tls,
    enabledTransports: ['ws', 'wss'],
    authEndpoint: `${daemon.url}/broadcasting/auth`,
    bearerToken: daemon.providers['7'],
  });
  try {
    assert.equal(echo.connector.options.auth.headers.Authorization, `Bearer ${daemon.providers['7']}`);
    const heard = [];
    const channel = echo.private('provider.7').listen('.lead.assigned', (d) => heard.push(d));
    await subscribed(channel);
    const lead = await createLead({ name: 'Bearer', provider_id: 7 });
    await waitFor('the event', () => heard.some((data) => data.lead.id === lead.id));
  } finally {
    echo.disconnect();
  }
});
