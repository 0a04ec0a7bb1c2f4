// The day at a glance as pictures, drawn as plain SVG: a bar of leads by status, and leads
// per hour as columns. No library: a few rects and texts, coloured by classes in style.css.

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Each status's share of `total` as [x, width] on a bar `width` wide (pure, for tests). */
export function segments(counts, width) {
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  let x = 0;
  return counts.map(([status, n]) => {
    const w = total ? (n / total) * width : 0;
    const part = { status, n, x, width: w };
    x += w;
    return part;
  });
}

/** One bar split by status, each part titled "contacted: 12". */
export function statusBar(counts, { width = 600, height = 18 } = {}) {
  const svg = svgEl("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "status-bar",
    role: "img",
    preserveAspectRatio: "none",
  });
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  svg.append(svgEl("title", {}, counts.map(([s, n]) => `${s}: ${n}`).join(", ") || "no leads"));
  if (!total) svg.append(svgEl("rect", { x: 0, y: 0, width, height, class: "bar-empty" }));
  for (const part of segments(counts, width)) {
    if (!part.n) continue;
    const rect = svgEl("rect", {
      x: part.x.toFixed(2),
      y: 0,
      width: Math.max(part.width, 1).toFixed(2),
      height,
      class: `bar-part status-${slug(part.status)}`,
    });
    rect.dataset.status = part.status;
    rect.append(svgEl("title", {}, `${part.status}: ${part.n}`));
    svg.append(rect);
  }
  return svg;
}

/** Columns of leads created each hour; the hour labels every few columns. */
export function hourColumns(hours, { width = 600, height = 120 } = {}) {
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, class: "hour-chart", role: "img" });
  const top = Math.max(1, ...hours.map((h) => h.created));
  const label = 26; // room for the hour labels under the columns
  const step = hours.length ? width / hours.length : width;
  const total = hours.reduce((sum, h) => sum + h.created, 0);
  svg.append(svgEl("title", {}, `${total} leads today, most in one hour: ${top === 1 && !total ? 0 : top}`));
  hours.forEach((hour, n) => {
    const h = ((height - label - 2) * hour.created) / top;
    const date = new Date(hour.hour);
    const rect = svgEl("rect", {
      x: (n * step + 1).toFixed(2),
      y: (height - label - h).toFixed(2),
      width: Math.max(step - 2, 1).toFixed(2),
      height: h.toFixed(2),
      class: "hour-bar",
    });
    const local = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    rect.append(svgEl("title", {}, `${local}: ${hour.created}`));
    const short = date.toLocaleTimeString([], { hour: "numeric" }); // "4 PM", "16"
    svg.append(rect);
    if (n % Math.ceil(hours.length / 6 || 1) === 0) {
      svg.append(svgEl("text", { x: n * step + 1, y: height - 4, class: "hour-label" }, short));
    }
  });
  return svg;
}

/** A status as a CSS class name part: letters, digits and dashes only. */
export function slug(status) {
  return String(status).toLowerCase().replace(/[^a-z0-9-]+/g, "-");
}
