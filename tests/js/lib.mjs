// What every JS client test shares: the daemon it talks to (from the pytest that launched
// it), Echo and pusher-js set up the way docs/frontends.md shows, and waiting.
import { after, before } from 'node:test';

import Echo from 'laravel-echo';
import Pusher from 'pusher-js';

// {"url", "admin": TOKEN, "providers": {"7": TOKEN, ...}} from tests/js/test_js_clients.py
export const daemon = JSON.parse(process.env.LEADRELAY_JS_TEST ?? '{}');
if (!daemon.url) throw new Error('run these through pytest (tests/js/test_js_clients.py)');

export const bearer = (token) => ({ Authorization: `Bearer ${token}` });

// GET /broadcasting/config: all a page needs to open the socket (nothing secret)
export async function broadcastingConfig(token = daemon.admin) {
  const response = await fetch(`${daemon.url}/broadcasting/config`, { headers: bearer(token) });
  if (response.status !== 200) throw new Error(`config: ${response.status}`);
  return response.json();
}

// the Pusher options a page builds from /broadcasting/config (docs/frontends.md)
export function pusherOptions(config, token) {
  return {
    cluster: config.cluster,
    wsHost: config.ws_host,
    wsPort: config.ws_port,
    wssPort: config.ws_port,
    forceTLS: config.tls,
    enabledTransports: ['ws', 'wss'],
    channelAuthorization: {
      endpoint: `${daemon.url}/broadcasting/auth`,
      transport: 'ajax',
      headers: bearer(token),
    },
  };
}

// Laravel Echo as docs/frontends.md shows it; `auth` is given so no instance shares Echo's
// default headers object (2.5.0's bearerToken writes into it)
export function echoFor(config, token) {
  return new Echo({
    broadcaster: 'pusher',
    Pusher,
    key: config.key,
    cluster: config.cluster,
    wsHost: config.ws_host,
    wsPort: config.ws_port,
    wssPort: config.ws_port,
    forceTLS: config.tls,
    enabledTransports: ['ws', 'wss'],
    authEndpoint: `${daemon.url}/broadcasting/auth`,
    auth: { headers: bearer(token) },
  });
}

export { Echo, Pusher };

// A test file's Echo instances: `config` is /broadcasting/config, fetched before its tests,
// and every instance `echo(token)` opened is disconnected after them
export function echoClients() {
  const clients = { config: undefined, opened: [] };
  before(async () => {
    clients.config = await broadcastingConfig();
  });
  after(() => {
    for (const instance of clients.opened) instance.disconnect();
  });
  clients.echo = (token) => {
    const instance = echoFor(clients.config, token);
    clients.opened.push(instance);
    return instance;
  };
  return clients;
}

export async function waitFor(what, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// resolves when the Echo channel's subscription succeeded; rejects on its error
export function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribed(() => resolve());
    channel.error((error) => reject(new Error(`subscription refused: ${JSON.stringify(error)}`)));
  });
}

export async function connected(echo) {
  await waitFor('the socket', () => echo.socketId());
  return echo.socketId();
}

export async function api(method, path, { token = daemon.admin, body, headers = {} } = {}) {
  const response = await fetch(`${daemon.url}${path}`, {
    method,
    headers: { ...bearer(token), 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

export async function createLead(fields, options = {}) {
  const response = await api('POST', '/api/leads', { ...options, body: fields });
  if (response.status !== 201) throw new Error(`create: ${response.status}`);
  return response.body;
}

export async function changeStatus(leadId, status, options = {}) {
  const response = await api('PATCH', `/api/admin/leads/${leadId}`, {
    ...options,
    body: { status },
  });
  if (response.status !== 200) throw new Error(`patch: ${response.status}`);
  return response.body;
}
