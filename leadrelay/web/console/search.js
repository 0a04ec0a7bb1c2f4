// The search box: as you type (debounced), the list shows the leads the API finds by name,
// email, phone or CRM id; while a search is on, new events run it again, so it stays live.

import { debounce } from "./dom.js";

export const TYPE_MS = 250;
export const LIVE_MS = 400;
export const LIMIT = 100;

export class SearchBox {
  /** input: the <input type=search>; run(q): list what q finds (or, q empty, everything). */
  constructor(input, run) {
    this.input = input;
    this.run = run;
    this.query = "";
    const typed = debounce(() => this.changed(), TYPE_MS);
    input.addEventListener("input", typed);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && input.value) {
        input.value = "";
        this.changed();
      }
    });
    this.again = debounce(() => this.run(this.query), LIVE_MS);
  }

  get active() {
    return this.query !== "";
  }

  changed() {
    const query = this.input.value.trim();
    if (query === this.query) return;
    this.query = query;
    this.again.cancel();
    this.run(query);
  }

  /** An event arrived: what the search finds may have changed. */
  touched() {
    if (this.active) this.again();
  }
}
