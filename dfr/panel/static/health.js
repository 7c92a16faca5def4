// The service's own health as a banner: parts of the controller that are down (a supervised background
// task failed and is waiting to restart, or was given up) or an unreachable database, from
// /api/v1/healthz. Read every HEALTH_MS; hidden while everything runs.
import { api } from "./api.js";

const HEALTH_MS = 10000;

function describe(health) {
  const parts = (health.parts || []).map((p) => `${p.name} ${p.state}${p.last_error ? ` (${p.last_error})` : ""}`);
  if (health.status === "unavailable") parts.unshift(`database unavailable: ${health.database}`);
  return parts.length ? `Controller degraded: ${parts.join("; ")}` : "";
}

export function watchHealth(banner) {
  async function check() {
    let text;
    try {
      text = describe(await api("/api/v1/healthz"));
    } catch (e) {
      text = e.status === 503 ? "Controller degraded: the database does not answer" : "";
    }
    banner.textContent = text;
    banner.hidden = !text;
  }
  check();
  return setInterval(check, HEALTH_MS);
}
