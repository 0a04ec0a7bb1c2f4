// admin_channel = "private-admin": the admin feed only admin tokens may authorise.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createLead, daemon, echoClients, sleep, subscribed, waitFor } from './lib.mjs';

const clients = echoClients();
const { echo } = clients;

test("Echo.private('admin') hears the admin feed with an admin token; nobody hears public admin", async () => {
  assert.equal(clients.config.channels.admin, 'private-admin');
  const admin = echo(daemon.admin);
  const onlooker = echo(daemon.admin);
  const heard = [];
  const heardInPublic = [];
  const feed = admin.private('admin').listen('.lead.assigned', (data) => heard.push(data));
  const publicFeed = onlooker.channel('admin').listen('.lead.assigned', (d) => heardInPublic.push(d));
  await Promise.all([subscribed(feed), subscribed(publicFeed)]);

  const lead = await createLead({ name: 'Private Ada' });
  await waitFor('the private feed', () => heard.some((data) => data.lead.id === lead.id));
  assert.equal(heard.find((data) => data.lead.id === lead.id).lead.name, 'Private Ada');
  await sleep(300);
  assert.deepEqual(heardInPublic, []);
});

test("a provider's token cannot authorise private-admin (403)", async () => {
  for (const id of ['7', '8']) {
    const provider = echo(daemon.providers[id]);
    const heard = [];
    const error = await new Promise((resolve) => {
      provider
        .private('admin')
        .error((e) => resolve(e))
        .listen('.lead.assigned', (data) => heard.push(data));
    });
    assert.equal(error.status, 403);
    await createLead({ name: 'Not for providers' });
    await sleep(200);
    assert.deepEqual(heard, []);
  }
});
