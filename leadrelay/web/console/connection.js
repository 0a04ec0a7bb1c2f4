// The connection line in the header (the websocket, and the relay's state beside it) and the
// banner that says how to fix live updates when pusher-js cannot load.

import { el } from "./dom.js";

const WORDS = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  failed: "Live updates off",
  error: "Connected",
};

/** node: the #connection line; connection: {state, detail}; relay: GET /api/admin/outbox. */
export function drawConnection(node, { state, detail }, relay) {
  let text = WORDS[state] || state;
  if ((state === "failed" || state === "error") && detail) text = `${text}: ${detail}`;
  let look = state === "connected" || state === "error" ? "ok" : state === "failed" ? "bad" : "wait";
  if (relay && relay.relay_paused_reason) {
    text += ` · relay paused: ${relay.relay_paused_reason}`;
    look = "bad";
  } else if (relay && !relay.pusher_enabled) {
    text += " · relaying switched off";
    look = "bad";
  }
  node.dataset.state = look;
  node.dataset.connection = state;
  node.querySelector("#connection-text").textContent = text;
  node.hidden = false;
}

/** pusher-js did not load: one sentence with the fix, and where it is explained. */
export function showPusherMissing(banner) {
  const link = el("a", "", "how to do that");
  link.href = "/console/help.html#live-updates";
  banner.replaceChildren(
    "Live updates are off because pusher-js did not load: set ",
    el("code", "", "console_pusher_js"),
    " to a local copy of pusher-js and restart leadrelay (",
    link,
    ").",
  );
  banner.hidden = false;
}
