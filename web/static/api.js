// The REST client of the console. The access token lives only in this
// module's memory; the refresh token in sessionStorage (this tab only), so a
// reload can resume the session without the long-lived secret outliving the
// tab. A 401 triggers one refresh and one retry.

const REFRESH_KEY = "accountdb.refresh_token";

let accessToken = null;
let generation = 0; // bumped whenever the access token changes
let refreshing = null; // the one refresh in flight: refresh tokens rotate, a parallel reuse would revoke the session
const consistency = new Map(); // collection → X-Consistency-Token of the last command on it
let onSignedOut = () => {};

/** An HTTP failure, carrying the RFC 9457 problem when the server sent one. */
export class ApiError extends Error {
  constructor(status, problem) {
    const p = problem && typeof problem === "object" ? problem : {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.status = status;
    this.problem = p;
    this.code = p.code || "";
    this.fieldErrors = p.errors && typeof p.errors === "object" ? p.errors : {};
  }
}

/** Called when the session is gone (refresh failed or signed out). */
export function setSignedOutHandler(fn) {
  onSignedOut = fn;
}

export function hasSession() {
  return accessToken !== null || sessionStorage.getItem(REFRESH_KEY) !== null;
}

function setTokens(pair) {
  accessToken = pair.access_token;
  generation++;
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
}

function clearTokens() {
  accessToken = null;
  generation++;
  sessionStorage.removeItem(REFRESH_KEY);
  consistency.clear();
  for (const fn of sessionEndHooks) {
    fn();
  }
}

const sessionEndHooks = new Set();

/**
 * Calls fn whenever the session ends (sign-out, a refused refresh), so that
 * what a page keeps for the signed-in user goes with it.
 */
export function whenSessionEnds(fn) {
  sessionEndHooks.add(fn);
}

/**
 * Signs in with a password. With two-factor on, answers {mfaToken} for
 * completeMFA; otherwise the session is open, and {enrolment: true} says it
 * reaches only two-factor enrolment (the tenant requires it).
 */
export async function login(email, password) {
  const answer = await send("POST", "/v1/auth/login", { email, password }, {});
  if (answer.mfa_required) {
    return { mfaToken: answer.mfa_token };
  }
  setTokens(answer);
  return { enrolment: Boolean(answer.mfa_enrollment_required) };
}

/** The second step of a sign-in: a current code or a recovery code. */
export async function completeMFA(mfaToken, code, recoveryCode) {
  const body = recoveryCode ? { mfa_token: mfaToken, recovery_code: recoveryCode } : { mfa_token: mfaToken, code };
  setTokens(await send("POST", "/v1/auth/mfa", body, {}));
}

/**
 * Takes the tokens a single sign-on put in the URL's fragment
 * (/#access_token=…) and removes them from the address bar and history at
 * once. Answers whether there were any.
 */
export function adoptSignOnFragment() {
  if (!location.hash.startsWith("#access_token=")) {
    return false;
  }
  const f = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", location.pathname + location.search);
  if (!f.get("access_token") || !f.get("refresh_token")) {
    return false;
  }
  setTokens({ access_token: f.get("access_token"), refresh_token: f.get("refresh_token") });
  return true;
}

/** A GET of a public route (no token): the sign-in page's providers. */
export function publicGet(path) {
  return send("GET", path, undefined, {});
}

/** Rotates the refresh token; concurrent callers share one request. */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const token = sessionStorage.getItem(REFRESH_KEY);
      if (!token) {
        throw new ApiError(401, { title: "Not signed in", code: "unauthenticated" });
      }
      try {
        setTokens(await send("POST", "/v1/auth/refresh", { refresh_token: token }, {}));
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 400)) {
          clearTokens();
          onSignedOut("Your session has ended. Please sign in again.");
        }
        throw err;
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

export async function logout() {
  try {
    if (accessToken) {
      await send("POST", "/v1/auth/logout", undefined, { auth: true });
    }
  } finally {
    clearTokens();
  }
}

/** Forgets the tokens without telling the server (its session is already gone). */
export function forget() {
  clearTokens();
}

/**
 * Calls the API with the access token. opts.idempotencyKey sets
 * Idempotency-Key. Commands remember their consistency token, and the next
 * GET of the same collection sends it once, so a list read right after a
 * change shows that change (read-your-writes).
 */
export async function api(method, path, body, opts = {}) {
  if (accessToken === null) {
    await refresh();
  }
  const gen = generation;
  try {
    return await send(method, path, body, { ...opts, auth: true });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401 || opts.retried) {
      throw err;
    }
    if (gen === generation) {
      await refresh();
    }
    return send(method, path, body, { ...opts, auth: true, retried: true });
  }
}

/**
 * Makes the next GET of path's collection wait until its read model has
 * applied the event at position (an event id of GET /v1/events). The live
 * feed can deliver an event before the projector has committed it; without
 * this a reload prompted by the event could show the state before it.
 */
export function expectPosition(path, position) {
  consistency.set(collectionOf(path), position);
}

function collectionOf(path) {
  return path.split("?")[0].split("/").slice(0, 3).join("/");
}

async function send(method, path, body, opts) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (opts.auth) {
    headers.Authorization = `Bearer ${accessToken}`;
  }
  if (opts.idempotencyKey) {
    headers["Idempotency-Key"] = opts.idempotencyKey;
  }
  const coll = collectionOf(path);
  if (method === "GET" && consistency.has(coll)) {
    headers["X-Consistency-Token"] = consistency.get(coll);
    consistency.delete(coll);
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { title: "Network error", detail: "The server could not be reached." });
  }
  const token = res.headers.get("X-Consistency-Token");
  if (token && method !== "GET") {
    consistency.set(coll, token);
  }
  if (res.status === 204) {
    return null;
  }
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    throw new ApiError(res.status, data);
  }
  return data;
}

/** A fresh Idempotency-Key for one submission of a form. */
export function newKey() {
  return crypto.randomUUID();
}

/** Fetches every page of a list (up to max items). */
export async function listAll(path, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...(page.items || []));
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/**
 * Follows a Server-Sent Events route (GET /v1/events) with fetch: the
 * browser's EventSource cannot send the Authorization header. onEvent gets
 * {id, type, data} for each event; onState gets true when a stream is open
 * and false when it is not (then the caller should poll). After a drop it
 * resumes with Last-Event-ID, so nothing is missed; a 401 refreshes the
 * access token once; other failures back off up to 30 s. Returns stop().
 */
export function follow(path, onEvent, onState = () => {}) {
  const ctrl = new AbortController();
  let lastId = null;
  const sleep = (ms) =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      ctrl.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
  (async () => {
    let delay = 1000;
    while (!ctrl.signal.aborted) {
      try {
        if (accessToken === null) {
          await refresh();
        }
        const gen = generation;
        const headers = { Accept: "text/event-stream", Authorization: `Bearer ${accessToken}` };
        if (lastId !== null) {
          headers["Last-Event-ID"] = lastId;
        }
        const res = await fetch(path, { headers, signal: ctrl.signal, credentials: "omit", cache: "no-store" });
        if (res.status === 401) {
          if (gen === generation) {
            await refresh(); // throws when the session is gone: the loop ends below
          }
          continue;
        }
        if (res.status === 400 && lastId !== null) {
          lastId = null; // the id is no longer resumable: start from now, the caller reloads
          onState(false);
          continue;
        }
        if (!res.ok) {
          throw new ApiError(res.status, null);
        }
        delay = 1000;
        onState(true);
        await readEvents(res.body, (ev) => {
          lastId = ev.id;
          onEvent(ev);
        });
      } catch (err) {
        if (ctrl.signal.aborted || (err instanceof ApiError && err.status === 401)) {
          break;
        }
      }
      onState(false);
      await sleep(delay);
      delay = Math.min(delay * 2, 30000);
    }
    onState(false);
  })();
  return () => ctrl.abort();
}

/**
 * POSTs body to path asking for Server-Sent Events (the assistant's answers):
 * onEvent gets {type, data} for each event as it comes. A problem answer
 * (before any event) is thrown as an ApiError; a 401 refreshes once.
 */
export async function postStream(path, body, onEvent, opts = {}) {
  if (accessToken === null) {
    await refresh();
  }
  const gen = generation;
  let res;
  try {
    res = await fetch(path, {
      method: "POST",
      headers: { Accept: "text/event-stream", "Content-Type": "application/json", Authorization: `Bearer ${accessToken}` },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { title: "Network error", detail: "The server could not be reached." });
  }
  if (res.status === 401 && !opts.retried) {
    if (gen === generation) {
      await refresh();
    }
    return postStream(path, body, onEvent, { retried: true });
  }
  if (!res.ok || !(res.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
    const problem = await res.json().catch(() => null);
    throw new ApiError(res.status, problem);
  }
  await readEvents(res.body, onEvent);
}

/** Reads a text/event-stream body, calling onEvent for each event block. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let ev = { id: null, type: "message", data: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buf += value;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (line === "") {
        if (ev.id !== null || ev.data !== "") {
          onEvent(ev);
        }
        ev = { id: null, type: "message", data: "" };
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") {
        ev.id = val;
      } else if (field === "event") {
        ev.type = val;
      } else if (field === "data") {
        ev.data = ev.data === "" ? val : `${ev.data}\n${val}`;
      }
    }
  }
}
