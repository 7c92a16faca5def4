// The minimal viewer page's script: play /video/<drone>'s live video (see whep.js).
import { playWhep } from "/video/whep.js";
const drone = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const status = document.getElementById("status");
const video = document.getElementById("video");
document.getElementById("title").textContent = `Drone ${drone}`;
document.title = `dfr · ${drone} live`;
const show = (text, bad = false) => { status.textContent = text; status.className = bad ? "bad" : ""; };
try {
  const session = await playWhep(video, `/api/v1/drones/${encodeURIComponent(drone)}/whep`, {
    onState: (s) => show(s, s === "failed" || s === "disconnected"),
  });
  window.dfrVideo = session;
  addEventListener("pagehide", () => session.close());
} catch (e) {
  show(e.status === 401 ? "sign in first" : e.message, true);
}
