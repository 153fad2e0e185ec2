// The server's API as the pages use it: the session cookie goes with
// every request (same origin), and state-changing requests carry the
// session's CSRF token.

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = { user: "", role: "", csrf: "" };

const ranks = { viewer: 1, developer: 2, "oncall-lead": 3, admin: 4 };

// can reports whether the logged-in role reaches role; the server checks
// again on every request, this only decides which buttons to show.
export function can(role) {
  return (ranks[session.role] || 0) >= (ranks[role] || 99);
}

async function call(method, path, body) {
  const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") {
    opts.headers["X-CSRF-Token"] = session.csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    // A session that ended sends the page to the login; the login's own
    // endpoints answer 401 as part of logging in.
    if (resp.status === 401 && !path.startsWith("/auth/") && path !== "/login") {
      window.dispatchEvent(new CustomEvent("gantry:unauthenticated"));
    }
    throw new APIError(resp.status, e.code || String(resp.status), e.message || resp.statusText || "request failed");
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);

// loadSession asks who is logged in; false when nobody is.
export async function loadSession() {
  try {
    const s = await get("/auth/session");
    Object.assign(session, { user: s.user, role: s.role, csrf: s.csrfToken });
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

export async function login(user, password) {
  const s = await call("POST", "/login", { user, password });
  Object.assign(session, { user: s.user, role: s.role, csrf: s.csrfToken });
}

export async function logout() {
  try {
    await call("POST", "/logout");
  } finally {
    Object.assign(session, { user: "", role: "", csrf: "" });
  }
}

// follow opens a Server-Sent Events stream: onLine for each `line`
// event's data, onEnd with the `end` event's data or an error. It returns
// a function that closes the stream. The browser reconnects with
// Last-Event-ID by itself after a network error.
export function follow(path, onLine, onEnd) {
  const es = new EventSource(path, { withCredentials: true });
  es.addEventListener("line", (ev) => onLine(JSON.parse(ev.data)));
  es.addEventListener("end", (ev) => {
    es.close();
    onEnd(ev.data ? JSON.parse(ev.data) : {});
  });
  es.addEventListener("error", (ev) => {
    if (ev.data) {
      es.close();
      onEnd({ error: JSON.parse(ev.data) });
    }
  });
  return () => es.close();
}

// q builds a query string from the non-empty values of o.
export function q(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}
