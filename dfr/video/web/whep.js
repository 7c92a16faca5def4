// A tiny WHEP client (RFC 9725): play a dfr drone's live video in a <video> element.
//
//   import { playWhep } from "/video/whep.js";
//   const session = await playWhep(videoEl, "/api/v1/drones/cv-1/whep");
//   ...
//   await session.close();
//
// Receive-only, non-trickle: the offer is sent once ICE gathering is complete and the server answers
// with its complete candidates, so one POST sets the stream up. Same-origin requests carry the
// dfr_session cookie, so a signed-in page needs no token; pass {headers} for a bearer token instead.
// Self-contained ES module, no dependencies: the panel imports it as is.

const GATHER_TIMEOUT_MS = 5000;

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS); // host candidates are enough on a LAN
  });
}

export class WhepError extends Error {
  constructor(status, detail) {
    super(`WHEP ${status}: ${(detail && detail.reason) || "request failed"}`);
    this.status = status;
    this.detail = detail;
  }
}

export async function playWhep(videoEl, url, { headers = {}, iceServers = [], onState } = {}) {
  const pc = new RTCPeerConnection({ iceServers });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addEventListener("track", (ev) => {
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    if (videoEl.srcObject !== stream) {
      videoEl.srcObject = stream;
      videoEl.muted = true; // autoplay policies allow muted video
      videoEl.play().catch(() => {});
    }
  });
  if (onState) pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  let resp;
  try {
    resp = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", ...headers },
      body: pc.localDescription.sdp,
      credentials: "same-origin",
    });
  } catch (e) {
    pc.close();
    throw e;
  }
  if (resp.status !== 201) {
    let detail = null;
    try { detail = (await resp.json()).detail; } catch (_) { /* not JSON */ }
    pc.close();
    throw new WhepError(resp.status, detail);
  }
  const resource = new URL(resp.headers.get("Location"), new URL(url, baseUrl())).toString();
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  let closed = false;
  return {
    pc,
    resource,
    async close() {
      if (closed) return;
      closed = true;
      pc.close();
      try {
        await fetch(resource, { method: "DELETE", headers, credentials: "same-origin" });
      } catch (_) { /* the server drops dead peers anyway */ }
    },
  };
}

function baseUrl() {
  return typeof window !== "undefined" ? window.location.href : "http://localhost/";
}
