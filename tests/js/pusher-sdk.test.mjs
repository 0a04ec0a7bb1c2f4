// The `pusher` server SDK from npm (pusher-http-node 5.3.4), pointed at leadrelay's Pusher API
// (setting pusher_api) instead of Pusher: it must raise what it raises against Pusher.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import Pusher from 'pusher';

// {"host", "port", "appId", "key", "secret", "occupied", "channel"} from tests/js/test_pusher_sdks.py
const daemon = JSON.parse(process.env.LEADRELAY_JS_TEST ?? '{}');
if (!daemon.port) throw new Error('run these through pytest (tests/js/test_pusher_sdks.py)');

function sdk(overrides = {}) {
  return new Pusher({
    appId: daemon.appId,
    key: daemon.key,
    secret: daemon.secret,
    host: daemon.host,
    port: daemon.port,
    useTLS: false,
    ...overrides,
  });
}

// what the SDK rejects with for a status: its RequestError, the body as Pusher's words
async function refused(promise, status, words) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, 'PusherRequestError');
    assert.equal(err.message, `Unexpected status code ${status}`);
    assert.equal(err.status, status);
    assert.match(err.body, words);
    return true;
  });
}

test('a wrong secret is a 401 with Pusher\'s "Invalid signature"', async () => {
  await refused(sdk({ secret: 'not-the-secret' }).trigger('c', 'e', { x: 1 }), 401, /^Invalid signature: /);
});

test('a timestamp over 600 s old is a 401 "Timestamp expired"', async () => {
  const now = Date.now;
  Date.now = () => now() - 3600 * 1000;
  try {
    await refused(sdk().trigger('c', 'e', { x: 1 }), 401, /^Timestamp expired: /);
  } finally {
    Date.now = now;
  }
});

test('another app id is a 404', async () => {
  await refused(sdk({ appId: '999' }).trigger('c', 'e', { x: 1 }), 404, /Unknown app/);
});

test('a malformed body is a 400', async () => {
  const body = { name: 7, channels: ['c'], data: 'x' };
  await refused(sdk().post({ path: '/events', body }), 400, /Expected name parameter to be a string/);
});

test('more than 100 channels: the SDK refuses first, the daemon answers 400 all the same', () => {
  const channels = Array.from({ length: 101 }, (_, n) => `c${n}`);
  assert.throws(() => sdk().trigger(channels, 'e', {}), /more than 100 channels/);
  const body = { name: 'e', channels, data: '{}' };
  return refused(sdk().post({ path: '/events', body }), 400, /at most 100 channels/);
});

test('more than 10 events in a batch is a 400', async () => {
  const batch = Array.from({ length: 11 }, () => ({ channel: 'c', name: 'e', data: {} }));
  await refused(sdk().triggerBatch(batch), 400, /got 11/);
});

test('a channel name Pusher refuses is a 400 (the SDK lets 165 characters through)', async () => {
  await refused(sdk().trigger('c'.repeat(165), 'e', {}), 400, /Invalid channel name/);
  await refused(sdk().triggerBatch([{ channel: 'a:b', name: 'e', data: {} }]), 400, /Invalid channel name/);
});

test('data over 10 KB (bytes, UTF-8) is a 413', async () => {
  await refused(sdk().trigger('c', 'e', 'é'.repeat(5121)), 413, /exceeds the allowed maximum \(10240 bytes\)/);
});

test('sequential triggers and a batch are answered {} once stored, and arrive in order', async () => {
  // tests/js/test_pusher_sdks.py watches daemon.channel and checks n = 0, 1, … 12 in order
  for (let n = 0; n < 10; n += 1) {
    const answer = await sdk().trigger(daemon.channel, 'node.event', { n });
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), {});
  }
  const batch = [10, 11, 12].map((n) => ({ channel: daemon.channel, name: 'node.batch', data: { n } }));
  const answer = await sdk().triggerBatch(batch);
  assert.deepEqual(await answer.json(), {});
});

test('channel reads pass through to the upstream', async () => {
  const all = await (await sdk().get({ path: '/channels' })).json();
  assert.ok(daemon.occupied in all.channels, JSON.stringify(all));
  const params = { info: 'subscription_count' };
  const one = await (await sdk().get({ path: `/channels/${daemon.occupied}`, params })).json();
  assert.equal(one.occupied, true);
  assert.equal(one.subscription_count, 1);
  await refused(sdk({ secret: 'nope-nope' }).get({ path: '/channels' }), 401, /Invalid signature/);
});
