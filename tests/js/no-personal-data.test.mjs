// broadcast_personal_data = false: the lead goes out without name, email and phone.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { broadcastingConfig, createLead, daemon, echoFor, subscribed, waitFor } from './lib.mjs';

const PERSON = daemon.person;
let config;
const opened = [];

before(async () => {
  config = await broadcastingConfig();
});

after(() => {
  for (const instance of opened) instance.disconnect();
});

test('Echo hears the lead without name, email or phone, and reads them from the API', async () => {
  assert.equal(config.personal_data, false);
  const admin = echoFor(config, daemon.admin);
  const seven = echoFor(config, daemon.providers['7']);
  opened.push(admin, seven);
  const byAdmin = [];
  const bySeven = [];
  const feeds = [
    admin.channel('admin').listen('.lead.assigned', (data) => byAdmin.push(data)),
    seven.private('provider.7').listen('.lead.assigned', (data) => bySeven.push(data)),
  ];
  await Promise.all(feeds.map(subscribed));

  const lead = await createLead({ ...PERSON, provider_id: 7, source: 'web' });
  const mine = (list) => list.find((data) => data.lead.id === lead.id);
  await waitFor('both feeds', () => mine(byAdmin) && mine(bySeven));
  for (const data of [mine(byAdmin), mine(bySeven)]) {
    assert.deepEqual(Object.keys(data.lead).sort(), [
      'created_at', 'id', 'provider_id', 'source', 'status', 'updated_at',
    ]);
    assert.equal(data.lead.source, 'web');
  }
  // the dashboard reads the person from the API, with its token
  const response = await fetch(`${daemon.url}/api/provider/leads/${lead.id}`, {
    headers: { Authorization: `Bearer ${daemon.providers['7']}` },
  });
  assert.equal((await response.json()).name, PERSON.name);
});
