// encrypted_channels = true: Echo's encryptedPrivate and plain pusher-js open what leadrelay
// sealed with the master key (the shared secret comes from /broadcasting/auth).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Pusher,
  bearer,
  broadcastingConfig,
  createLead,
  daemon,
  echoClients,
  pusherOptions,
  sleep,
  subscribed,
  waitFor,
} from './lib.mjs';

const PERSON = daemon.person; // {name, email, phone}: what must never cross the wire in clear
const clients = echoClients();
const { echo } = clients;

test('the daemon names the encrypted channels in /broadcasting/config', () => {
  assert.equal(clients.config.encrypted, true);
  assert.deepEqual(clients.config.channels, {
    admin: 'private-encrypted-admin',
    provider: 'private-encrypted-provider.{id}',
  });
});

test("Echo.encryptedPrivate('admin') and ('provider.7') decrypt the lead", async () => {
  const admin = echo(daemon.admin);
  const seven = echo(daemon.providers['7']);
  const byAdmin = [];
  const bySeven = [];
  const adminFeed = admin
    .encryptedPrivate('admin')
    .listen('.lead.assigned', (data) => byAdmin.push(data));
  const sevensFeed = seven
    .encryptedPrivate('provider.7')
    .listen('.lead.assigned', (data) => bySeven.push(data));
  await Promise.all([subscribed(adminFeed), subscribed(sevensFeed)]);

  const lead = await createLead({ ...PERSON, provider_id: 7 });
  const mine = (list) => list.find((data) => data.lead.id === lead.id);
  await waitFor('both feeds', () => mine(byAdmin) && mine(bySeven));
  for (const data of [mine(byAdmin), mine(bySeven)]) {
    assert.equal(data.lead.name, PERSON.name);
    assert.equal(data.lead.email, PERSON.email);
    assert.equal(data.lead.phone, PERSON.phone);
    assert.equal(data.seq, 1);
  }
});

test('plain pusher-js, configured from /broadcasting/config, decrypts too', async () => {
  const token = daemon.providers['7'];
  const own = await broadcastingConfig(token);
  const pusher = new Pusher(own.key, pusherOptions(own, token));
  try {
    const heard = [];
    const name = own.channels.provider.replace('{id}', '7');
    const channel = pusher.subscribe(name);
    channel.bind('lead.assigned', (data) => heard.push(data));
    await new Promise((resolve, reject) => {
      channel.bind('pusher:subscription_succeeded', resolve);
      channel.bind('pusher:subscription_error', (error) => reject(new Error(JSON.stringify(error))));
    });
    const lead = await createLead({ ...PERSON, provider_id: 7 });
    await waitFor('the event', () => heard.some((data) => data.lead.id === lead.id));
    assert.equal(heard.find((data) => data.lead.id === lead.id).lead.email, PERSON.email);
  } finally {
    pusher.disconnect();
  }
});

test("provider 8 gets no shared secret for provider 7's encrypted channel", async () => {
  const eight = echo(daemon.providers['8']);
  const heard = [];
  const error = await new Promise((resolve) => {
    eight
      .encryptedPrivate('provider.7')
      .error((e) => resolve(e))
      .listen('.lead.assigned', (data) => heard.push(data));
  });
  assert.equal(error.status, 403);
  await createLead({ ...PERSON, provider_id: 7 });
  await sleep(300);
  assert.deepEqual(heard, []);
  // and its own channel's auth answer carries the secret pusher-js needs
  const socketId = eight.socketId();
  const response = await fetch(`${daemon.url}/broadcasting/auth`, {
    method: 'POST',
    headers: { ...bearer(daemon.providers['8']), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ socket_id: socketId, channel_name: 'private-encrypted-provider.8' }),
  });
  assert.equal(response.status, 200);
  const answer = await response.json();
  assert.equal(Buffer.from(answer.shared_secret, 'base64').length, 32);
});
