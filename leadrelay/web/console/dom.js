// Small helpers every view shares: elements with text (never HTML), times and ages in words.
// Lead fields come from CRMs: they are only ever set with textContent.

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function button(text, className, onClick) {
  const node = el("button", className, text);
  node.type = "button";
  if (onClick) node.addEventListener("click", onClick);
  return node;
}

/** A lead's name, or null when it was erased (an erased lead keeps its row, name ""). */
export function leadName(lead) {
  return lead && typeof lead.name === "string" && lead.name.trim() ? lead.name : null;
}

/** "Lead 42 (Jane Doe)", or "Lead 42" for an erased one. */
export function leadLabel(lead) {
  const name = leadName(lead);
  return name === null ? `Lead ${lead.id}` : `Lead ${lead.id} (${name})`;
}

export function when(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  return date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** A moment to the second: "Dec 6, 23:35:20". */
export function stamp(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  const day = date.toLocaleDateString([], { month: "short", day: "numeric" });
  return `${day}, ${clock(iso)}`;
}

export function clock(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A duration in seconds as people say it: "40 s", "12 min", "3.5 h", "2 d". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, seconds);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(s < 36000 ? 1 : 0)} h`;
  return `${(s / 86400).toFixed(s < 864000 ? 1 : 0)} d`;
}

/** How long ago `iso` was, in words ("5 min"), against `now` (ms). */
export function age(iso, now = Date.now()) {
  const then = new Date(iso).getTime();
  return Number.isNaN(then) ? "" : duration((now - then) / 1000);
}

export function debounce(fn, ms) {
  let timer = null;
  const call = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}
