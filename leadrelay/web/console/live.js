// The live feed: pusher-js on the token's channel, plus the events API for what it missed.
//
// On every (re)subscription the feed fetches the events after its cursor; a live event whose
// seq skips one makes it fetch that lead's events first; event_id drops what came twice.
// Everything is applied through one queue, so events are applied one at a time, in order.

import { Feed, unseen } from "./feed.js";

export const EVENT_NAMES = ["lead.assigned", "lead.status.updated"];
// pusher-js waits out a 15 s timeout when its first retry after a drop is refused; the
// console tries again itself this often while it is not connected
const KICK_SECONDS = 3;
const PAGE = 500;

/** The channel of this token's feed, as the daemon's broadcast mode names it. */
export function feedChannel(me, config) {
  const names = config && config.channels;
  if (!names) return me.channel;
  if (me.role === "admin") return names.admin;
  return names.provider.replace("{id}", String(me.provider_id));
}

export class LiveFeed {
  /**
   * api: Api; me: GET /api/me; config: GET /broadcasting/config;
   * onEvent(data): apply one new event; onState(state, detail): the connection as words;
   * onStale(): the cursor is older than the events kept (410): reload, return a new cursor.
   */
  constructor({ api, me, config, onEvent, onState, onStale }) {
    this.api = api;
    this.me = me;
    this.config = config;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onStale = onStale;
    this.feed = new Feed({ cursor: me.events_after || 0 });
    this.queue = Promise.resolve();
    this.pusher = null;
    this.kicker = null;
    this.eventsPath = me.role === "admin" ? "/api/admin/events" : "/api/provider/events";
  }

  start() {
    if (typeof window.Pusher !== "function") {
      this.onState("failed", "pusher-js did not load");
      return;
    }
    const { config } = this;
    this.pusher = new window.Pusher(config.key, {
      cluster: config.cluster,
      wsHost: config.ws_host,
      wsPort: config.ws_port,
      wssPort: config.ws_port,
      forceTLS: Boolean(config.tls),
      // the one websocket the policy allows: wss with TLS, ws without (no other fallback)
      enabledTransports: config.tls ? ["wss"] : ["ws"],
      disableStats: true,
      channelAuthorization: {
        endpoint: "/broadcasting/auth",
        transport: "ajax",
        headers: { Authorization: `Bearer ${this.api.token}` },
      },
    });
    const connection = this.pusher.connection;
    connection.bind("state_change", ({ current }) => this.stateChanged(current));
    const channel = this.pusher.subscribe(feedChannel(this.me, config));
    channel.bind("pusher:subscription_succeeded", () => this.catchUp());
    channel.bind("pusher:subscription_error", (error) => {
      const status = error && error.status ? ` (HTTP ${error.status})` : "";
      this.onState("failed", `the server refused this feed${status}`);
    });
    for (const name of EVENT_NAMES) channel.bind(name, (data) => this.live(data));
  }

  stop() {
    clearInterval(this.kicker);
    this.kicker = null;
    if (this.pusher) this.pusher.disconnect();
    this.pusher = null;
  }

  stateChanged(current) {
    if (current === "connected") {
      console.log("Pusher connected");
      clearInterval(this.kicker);
      this.kicker = null;
      this.onState("connected");
      return;
    }
    if (current === "failed") {
      this.onState("failed", "this browser cannot open a websocket");
      return;
    }
    if (current === "disconnected" && !this.pusher) return;
    this.onState("reconnecting");
    if (!this.kicker) {
      this.kicker = setInterval(() => this.kick(), KICK_SECONDS * 1000);
    }
  }

  /** Start a fresh connection attempt now rather than after pusher-js's own timeout. */
  kick() {
    if (!this.pusher || this.pusher.connection.state === "connected") return;
    this.pusher.disconnect();
    this.pusher.connect();
  }

  enqueue(job) {
    this.queue = this.queue.then(job).catch((failure) => {
      this.onState("error", `could not fetch missed events: ${failure.message}`);
    });
    return this.queue;
  }

  async apply(data) {
    if (this.feed.accept(data)) await this.onEvent(data);
  }

  live(data) {
    return this.enqueue(async () => {
      if (this.feed.isDuplicate(data)) return;
      if (this.feed.hasGap(data)) await this.fetchLead(data.lead.id);
      await this.apply(data);
    });
  }

  async fetchLead(leadId) {
    const page = await this.api.get(this.eventsPath, { lead_id: leadId, after: 0, limit: 1000 });
    for (const data of unseen(this.feed, page.events)) await this.apply(data);
  }

  /** Everything after the cursor, page by page: what happened while the socket was away. */
  catchUp() {
    return this.enqueue(async () => {
      for (;;) {
        let page;
        try {
          page = await this.api.get(this.eventsPath, { after: this.feed.cursor, limit: PAGE });
        } catch (failure) {
          // away longer than the events are kept: what the list says now is the truth
          if (failure.status !== 410 || !this.onStale) throw failure;
          this.feed.cursor = await this.onStale();
          continue;
        }
        for (const data of unseen(this.feed, page.events)) await this.apply(data);
        this.feed.advance(page.next_after);
        if (page.events.length < PAGE) return;
      }
    });
  }
}
