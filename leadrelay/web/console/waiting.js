// A provider's "waiting for you": its leads still in the first status, oldest first, with how
// long each has waited (since it was assigned: its last change), to be contacted in order.

import { age, button, debounce, el, leadName, when } from "./dom.js";

export const SHOWN = 10;

export class WaitingList {
  /** root: the section; api: Api; first: a new lead's status; onOpen(leadId, opener). */
  constructor(root, { api, first, onOpen, onError }) {
    this.root = root;
    this.api = api;
    this.first = first;
    this.onOpen = onOpen;
    this.onError = onError;
    this.later = debounce(() => this.refresh(), 800);
  }

  async refresh() {
    let answer;
    try {
      const params = { status: this.first, order: "oldest", limit: SHOWN + 1 };
      answer = await this.api.get("/api/provider/leads", params);
    } catch (failure) {
      this.onError(`Your waiting leads could not be read: ${failure.message}`);
      return;
    }
    this.draw(answer.leads);
  }

  draw(leads) {
    const title = el("h2", "", "Waiting for you");
    title.id = "waiting-title";
    const list = el("ol", "waiting-list");
    for (const lead of leads.slice(0, SHOWN)) {
      const item = el("li");
      item.dataset.leadId = String(lead.id);
      const open = button(leadName(lead) ?? `Lead ${lead.id}`, "link-button", () => this.onOpen(lead.id, open));
      const waited = el("span", "waited", `waiting ${age(lead.updated_at)}`);
      waited.title = `assigned ${when(lead.updated_at)}`;
      item.append(open, waited);
      list.append(item);
    }
    const more = leads.length > SHOWN ? el("p", "note", `and more: filter by status “${this.first}”`) : null;
    const empty = leads.length ? null : el("p", "empty", "Nobody is waiting for you.");
    this.root.replaceChildren(...[title, list, more, empty].filter(Boolean));
    this.root.hidden = false;
  }
}
