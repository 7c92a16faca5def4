// The live stream (Server-Sent Events at /api/v1/stream) and the state it is applied to.
// The stream sends what happens from the moment it is open, not history, so every (re)connection and
// every `overflow` (this page read too slowly and lost events) is followed by reading the state again.

import { api } from "./api.js";

const RETRY_MS = 3000;

export function connectLive({ onEvent, onResync, onStatus }) {
  let source = null;
  let timer = null;
  let stopped = false;

  function open() {
    if (stopped) return;
    source = new EventSource("/api/v1/stream");
    source.addEventListener("open", () => {
      onStatus("live");
      onResync();
    });
    for (const type of ["mission", "telemetry", "incident"]) {
      source.addEventListener(type, (e) => onEvent(type, JSON.parse(e.data)));
    }
    source.addEventListener("overflow", () => onResync());
    source.addEventListener("error", () => {
      if (stopped) return;
      onStatus("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status, e.g. the session ended): ask who we are (a 401 brings
        // up the sign-in) and try again later.
        source = null;
        api("/api/v1/auth/me").catch(() => {});
        timer = setTimeout(open, RETRY_MS);
      }
    });
  }

  open();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      if (source) source.close();
      onStatus("offline");
    },
  };
}

/** Everything the page shows, read afresh: drones, recent missions and incidents. */
export async function readState() {
  const [drones, missions, incidents] = await Promise.all([
    api("/api/v1/drones"),
    api("/api/v1/missions", { params: { limit: 200 } }),
    api("/api/v1/incidents", { params: { limit: 100 } }),
  ]);
  return { drones: drones.drones, missions: missions.missions, incidents: incidents.incidents };
}
