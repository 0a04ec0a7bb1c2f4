// Laravel Echo 2.5.0 and pusher-js 8 against a real `leadrelay serve` and soketi.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Pusher,
  api,
  broadcastingConfig,
  changeStatus,
  connected,
  createLead,
  daemon,
  echoClients,
  pusherOptions,
  sleep,
  subscribed,
  waitFor,
} from './lib.mjs';

const clients = echoClients();
const { echo } = clients;

test('Echo.channel(admin) hears lead.assigned and lead.status.updated', async () => {
  const admin = echo(daemon.admin);
  const heard = [];
  const channel = admin
    .channel(daemon.admin_channel)
    .listen('.lead.assigned', (data) => heard.push(['lead.assigned', data]))
    .listen('.lead.status.updated', (data) => heard.push(['lead.status.updated', data]));
  await subscribed(channel);

  const lead = await createLead({ name: 'Ada Echo', email: 'ada@example.com' });
  await changeStatus(lead.id, 'contacted');
  const mine = () => heard.filter(([, data]) => data.lead.id === lead.id);
  await waitFor('both events', () => mine().length === 2);

  const [[firstName, assigned], [secondName, updated]] = mine();
  assert.equal(firstName, 'lead.assigned');
  assert.equal(assigned.seq, 1);
  assert.equal(assigned.lead.name, 'Ada Echo');
  assert.equal(assigned.lead.email, 'ada@example.com');
  assert.equal(secondName, 'lead.status.updated');
  assert.equal(updated.seq, 2);
  assert.equal(updated.old_status, 'new');
  assert.equal(updated.new_status, 'contacted');
  assert.deepEqual(updated.changed_by, { role: 'admin', provider_id: null });
});

test("Echo.private('provider.7') is authorised with the provider's token and hears its leads", async () => {
  const seven = echo(daemon.providers['7']);
  const heard = [];
  const channel = seven.private('provider.7').listen('.lead.assigned', (data) => heard.push(data));
  await subscribed(channel);

  const lead = await createLead({ name: 'For seven', provider_id: 7 });
  await waitFor('the provider event', () => heard.some((data) => data.lead.id === lead.id));
  assert.equal(heard.find((data) => data.lead.id === lead.id).lead.provider_id, 7);
});

test('provider 8 asking for provider.7 is refused (403) and receives nothing', async () => {
  const eight = echo(daemon.providers['8']);
  const seven = echo(daemon.providers['7']);
  const heardByEight = [];
  const heardBySeven = [];
  const refused = new Promise((resolve) => {
    eight
      .private('provider.7')
      .error((error) => resolve(error))
      .listen('.lead.assigned', (data) => heardByEight.push(data));
  });
  const error = await refused;
  assert.equal(error.status, 403);

  const sevens = seven.private('provider.7').listen('.lead.assigned', (d) => heardBySeven.push(d));
  await subscribed(sevens);
  const lead = await createLead({ name: 'Not for eight', provider_id: 7 });
  await waitFor('seven hears it', () => heardBySeven.some((data) => data.lead.id === lead.id));
  await sleep(300); // what eight would have got arrives with seven's, not later
  assert.deepEqual(heardByEight, []);

  // the daemon's own answer, as a script would see it
  const socketId = await connected(eight);
  const direct = await fetch(`${daemon.url}/broadcasting/auth`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${daemon.providers['8']}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ socket_id: socketId, channel_name: 'private-provider.7' }),
  });
  assert.equal(direct.status, 403);
  assert.equal((await direct.json()).error.code, 'channel_forbidden');
});

test('a write carrying X-Socket-ID: Echo.socketId() is not echoed to that client', async () => {
  const writer = echo(daemon.admin);
  const other = echo(daemon.admin);
  const byWriter = [];
  const byOther = [];
  const record = (list) => (data) => list.push(data);
  const writersChannel = writer
    .channel(daemon.admin_channel)
    .listen('.lead.status.updated', record(byWriter));
  const othersChannel = other
    .channel(daemon.admin_channel)
    .listen('.lead.status.updated', record(byOther));
  await Promise.all([subscribed(writersChannel), subscribed(othersChannel)]);

  const lead = await createLead({ name: 'Toggled' });
  await changeStatus(lead.id, 'contacted', { headers: { 'X-Socket-ID': writer.socketId() } });
  await changeStatus(lead.id, 'qualified'); // no socket id: everyone hears this one
  const seqs = (list) => list.filter((d) => d.lead.id === lead.id).map((d) => d.seq);
  await waitFor('the other hears both', () => seqs(byOther).length === 2);
  await waitFor('the writer hears the second', () => seqs(byWriter).length === 1);
  // one lead's events arrive in order, so had seq 2 reached the writer it would be here
  assert.deepEqual(seqs(byOther), [2, 3]);
  assert.deepEqual(seqs(byWriter), [3]);
});

test('pusher-js configured from nothing but GET /broadcasting/config', async () => {
  const token = daemon.providers['7'];
  const own = await broadcastingConfig(token);
  const pusher = new Pusher(own.key, pusherOptions(own, token));
  try {
    const heard = [];
    const channel = pusher.subscribe('private-provider.7');
    channel.bind('lead.assigned', (data) => heard.push(data));
    await new Promise((resolve, reject) => {
      channel.bind('pusher:subscription_succeeded', resolve);
      channel.bind('pusher:subscription_error', (error) => reject(new Error(JSON.stringify(error))));
    });
    const lead = await createLead({ name: 'Plain pusher-js', provider_id: 7 });
    await waitFor('the event', () => heard.some((data) => data.lead.id === lead.id));
  } finally {
    pusher.disconnect();
  }
});

test('the refusal of an unknown token is a 401 with the contract error body', async () => {
  const response = await api('GET', '/broadcasting/config', { token: 'lr_not-a-token' });
  assert.equal(response.status, 401);
  assert.equal(response.body.error.code, 'invalid_token');
});
