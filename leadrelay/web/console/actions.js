// Safe changes: say what a change will do and ask first, then offer Undo for a few seconds.
// The undo is a real change back (a PATCH, with its own events), not a local trick.

import { button, el, leadLabel } from "./dom.js";

export const UNDO_SECONDS = 10;

/** What a change will do, in words: a question and what follows from it (pure). */
export function consequences(lead, change, providerName, role) {
  const label = leadLabel(lead);
  const current = lead.provider_id === null ? null : providerName(lead.provider_id);
  if ("provider_id" in change) {
    if (change.provider_id === null) {
      return {
        question: `Take ${label} away from ${current || "its provider"}?`,
        detail: "No provider will have it; it waits for one.",
        done: `${label} has no provider now.`,
      };
    }
    const next = providerName(change.provider_id);
    return {
      question: `Reassign ${label} to ${next}?`,
      detail: current
        ? `${next} will be notified, and ${current} will no longer see it.`
        : `${next} will be notified.`,
      done: `${label} reassigned to ${next}.`,
    };
  }
  const detail =
    role === "provider"
      ? "The admin will see the change."
      : current
        ? `${current} will be notified.`
        : "It has no provider: only admins will see the change.";
  return {
    question: `Change ${label} from ${lead.status} to ${change.status}?`,
    detail,
    done: `${label} is ${change.status} now.`,
  };
}

/** The change that undoes `change` on `lead` (as it was before it). */
export function reverse(lead, change) {
  const back = {};
  if ("status" in change) back.status = lead.status;
  if ("provider_id" in change) back.provider_id = lead.provider_id;
  return back;
}

export class Actions {
  /** dialog: the <dialog> to ask in; toasts: the live region; patch(id, change) → lead. */
  constructor(dialog, toasts, { patch, providerName, role, onError }) {
    this.dialog = dialog;
    this.toasts = toasts;
    this.patch = patch;
    this.providerName = providerName;
    this.role = role;
    this.onError = onError;
  }

  /** Ask, change, offer Undo; resolves to the changed lead, or null if cancelled or failed. */
  async change(lead, change) {
    const words = consequences(lead, change, this.providerName, this.role);
    if (!(await this.ask(words.question, words.detail))) return null;
    let changed;
    try {
      changed = await this.patch(lead.id, change);
    } catch (failure) {
      this.onError(`${leadLabel(lead)} was not changed: ${failure.message}`);
      return null;
    }
    this.toast(words.done, async () => {
      try {
        await this.patch(lead.id, reverse(lead, change));
        this.toast(`Undone: ${leadLabel(lead)} is back as it was.`);
      } catch (failure) {
        this.onError(`The undo failed: ${failure.message}`);
      }
    });
    return changed;
  }

  /** Ask a yes/no question in the dialog; resolves true for yes. */
  ask(question, detail, yes = "Yes, do it") {
    const dialog = this.dialog;
    const title = el("h2", "", question);
    title.id = "confirm-title";
    const form = el("form", "confirm-actions");
    form.method = "dialog";
    const cancel = button("Cancel", "", () => dialog.close("cancel"));
    const ok = el("button", "primary", yes);
    ok.value = "yes";
    form.append(cancel, ok);
    dialog.replaceChildren(title, el("p", "", detail), form);
    dialog.setAttribute("aria-labelledby", "confirm-title");
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
      ok.focus();
    });
  }

  /** A short message at the foot of the screen, with an Undo button when `undo` is given. */
  toast(text, undo) {
    const item = el("div", "toast");
    item.append(el("span", "", text));
    const gone = () => item.remove();
    if (undo) {
      item.append(
        button("Undo", "link-button undo", () => {
          gone();
          undo();
        }),
      );
    }
    this.toasts.append(item);
    setTimeout(gone, (undo ? UNDO_SECONDS : 4) * 1000);
    return item;
  }
}
