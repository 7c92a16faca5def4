// The one way the page talks to the service: JSON over fetch, with the session cookie (same origin).
// Every refusal of the API has the body {"detail": {"code", "reason", "field"}}; it becomes an ApiError
// whose message is the server's reason, which the page shows as it is.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail.reason || `HTTP ${status}`);
    this.status = status;
    this.code = detail.code || `http_${status}`;
    this.field = detail.field || null;
  }
}

let unauthenticated = () => {};

/** Called with the error whenever a call answers 401 (session missing or expired): show the sign-in. */
export function onUnauthenticated(fn) {
  unauthenticated = fn;
}

export async function api(path, { method = "GET", body, params } = {}) {
  const url = params ? `${path}?${new URLSearchParams(params)}` : path;
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, { code: "network", reason: `the service does not answer (${e.message})` });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: { code: "bad_response", reason: text.slice(0, 200) } };
    }
  }
  if (!response.ok) {
    const d = data && data.detail;
    const detail = d && typeof d === "object" ? d : { reason: typeof d === "string" ? d : response.statusText };
    const err = new ApiError(response.status, detail);
    if (response.status === 401 && !path.endsWith("/auth/login")) unauthenticated(err);
    throw err;
  }
  return data;
}

export const post = (path, body = {}) => api(path, { method: "POST", body });
