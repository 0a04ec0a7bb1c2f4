// The daemon's HTTP API as the console calls it, with the token kept in sessionStorage only.

const TOKEN_KEY = "leadrelay.token";

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An answer that was not 2xx, with the contract's error code and message. */
export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(token, onUnauthorized = () => {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiFailure(0, "unreachable", "leadrelay cannot be reached; is the daemon running?");
    }
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const error = (data && data.error) || {};
    const failure = new ApiFailure(
      response.status,
      error.code || "http_error",
      error.message || `leadrelay answered ${response.status}`,
    );
    if (response.status === 401) this.onUnauthorized(failure);
    throw failure;
  }

  get(path, params) {
    const query = params ? new URLSearchParams(clean(params)).toString() : "";
    return this.request("GET", query ? `${path}?${query}` : path);
  }

  patch(path, body) {
    return this.request("PATCH", path, body);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }

  /** Every page of a cursor-paged list (`after` / `next_after`), up to `maxPages`. */
  async allPages(path, params, key, { limit = 500, maxPages = 40 } = {}) {
    const rows = [];
    let after = 0;
    for (let page = 0; page < maxPages; page += 1) {
      const answer = await this.get(path, { ...params, after, limit });
      rows.push(...answer[key]);
      if (answer.next_after === null || answer[key].length === 0) return { rows, complete: true };
      after = answer.next_after;
    }
    return { rows, complete: false };
  }
}

function clean(params) {
  return Object.fromEntries(
    Object.entries(params).filter(([, value]) => value !== undefined && value !== null && value !== ""),
  );
}
