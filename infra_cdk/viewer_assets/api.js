// The public API, called on this page's own origin with the token kept in session storage.
const TOKEN_KEY = "prtrace.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.message)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export async function api(path) {
  const secret = token.get();
  if (!secret) throw new ApiError(401, { detail: "not logged in" });
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${secret}`, Accept: "application/json" },
    credentials: "omit",
    cache: "no-store",
  });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const enc = encodeURIComponent;

export const listTraces = (nextToken) =>
  api(`/v1/traces?limit=100${nextToken ? `&next_token=${enc(nextToken)}` : ""}`);
export const getTrace = (id) => api(`/v1/traces/${enc(id)}`);
export const resultLink = (id, route) => api(`/v1/traces/${enc(id)}/${route}`);
export const artifactLink = (id, sha256) => api(`/v1/traces/${enc(id)}/artifacts/${enc(sha256)}`);

// Every event of an assembled trace, page by page (capped: a viewer shows a session, not a
// data set).
export async function allEvents(id, cap = 20000) {
  const events = [];
  let from = 0;
  while (from !== null && events.length < cap) {
    const page = await api(`/v1/traces/${enc(id)}/events?from_seq=${from}&limit=500`);
    events.push(...page.events);
    from = page.next_from_seq;
  }
  return events;
}

// An artifact's text through its presigned link (at most `limit` characters shown). When
// the download itself is refused (a bucket without CORS for this origin), the error carries
// the link, so the page can offer it to open directly.
export async function artifactText(id, sha256, limit = 256 * 1024) {
  const link = await artifactLink(id, sha256);
  let response;
  try {
    response = await fetch(link.url, { credentials: "omit", cache: "no-store" });
  } catch (error) {
    const failed = new ApiError(0, { detail: `download refused (${error.message})` });
    failed.url = link.url;
    throw failed;
  }
  if (!response.ok) throw new ApiError(response.status, { detail: `artifact download: HTTP ${response.status}` });
  const text = await response.text();
  return text.length > limit ? `${text.slice(0, limit)}\n… (${text.length - limit} more characters)` : text;
}
