"""`VideoHub`: one video source per drone, fanned out to every WebRTC viewer and to the recorder.

A drone's source (its camera track) is created when the first consumer arrives, a viewer's WHEP session
or a mission recording, and its frames are relayed with aiortc's `MediaRelay` (unbuffered: a slow
consumer gets the latest frame, never a growing backlog) to the recorder and to one VP8 encoder; the
encoder's packets are relayed to every viewer (`dfr.video.encoding`), so a drone is rendered (or decoded)
once and encoded once however many people watch, and each viewer's `RTCPeerConnection` only packetises
and encrypts. When the last viewer leaves the encoder stops; when nobody watches or records, the source.

Sessions are counted per account: one account may hold at most `max_per_account`, and the last
`commander_slots` of `max_sessions` are kept for pilots and admins, so that one viewer (or a crowd of them)
can never lock the pilot in command out of the video. A slot is taken before the offer is worked on, so a
burst of concurrent offers cannot all pass the check at once. Only the account that opened a session (or
an admin) may end it.

Sessions end by DELETE, by the peer's connection failing or closing (ICE consent lost: a closed browser
tab), or, for a peer that never connects, after `CONNECT_TIMEOUT_S`; a janitor task checks for those.
`close` ends everything in stages: refuse new sessions, close every peer connection, stop the sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from dfr.supervision import PartState, Supervisor
from dfr.video.encoding import EncodedTrack, KeyframeGate

__all__ = [
    "CONNECT_TIMEOUT_S",
    "AccountLimit",
    "BadOffer",
    "HubClosed",
    "NotYours",
    "TooManyViewers",
    "UnknownDrone",
    "VideoHub",
    "Viewer",
]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0
"""A peer that has not connected this long after its offer was answered is dropped."""

JANITOR_PART = "video-hub-janitor"
"""The part that drops sessions whose peer never connected (runs while there are sessions)."""

SourceFactory = Callable[[str], MediaStreamTrack]
_VP8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in ("video/VP8", "video/rtx")]


class UnknownDrone(LookupError):
    """No such drone in the area."""


class BadOffer(ValueError):
    """The SDP offer cannot be answered; the message says why (it goes back to the client)."""


class TooManyViewers(RuntimeError):
    """The hub's session limit is reached."""


class HubClosed(RuntimeError):
    """The hub is shutting down."""


class AccountLimit(RuntimeError):
    """This account already holds as many sessions as one account may."""


class NotYours(PermissionError):
    """The session belongs to another account (only admins may end others' sessions)."""


@dataclass(frozen=True)
class Viewer:
    """Who opens or ends a session: the account, and whether it commands (pilot, admin: reserved slots)
    or administers (admin: may end anyone's session)."""

    account: str
    commander: bool = False
    admin: bool = False


@dataclass
class _Feed:
    """A drone's source, its frame consumers (recorders, the encoder) and its encoded viewers."""

    source: MediaStreamTrack
    relay: MediaRelay = field(default_factory=MediaRelay)
    consumers: set[MediaStreamTrack] = field(default_factory=set)
    encoder: EncodedTrack | None = None
    packets: MediaRelay = field(default_factory=MediaRelay)
    viewers: set[MediaStreamTrack] = field(default_factory=set)


@dataclass
class Session:
    id: str
    drone_id: str
    pc: RTCPeerConnection
    track: MediaStreamTrack
    owner: str = ""
    created: float = field(default_factory=time.monotonic)
    connected: bool = False


class VideoHub:
    """Sources by drone id (made by `make_source`), WHEP sessions by id. `drones` are the valid ids."""

    def __init__(
        self,
        drones: set[str],
        make_source: SourceFactory,
        *,
        max_sessions: int = 64,
        max_per_account: int = 4,
        commander_slots: int = 8,
        ice_servers: list[str] | None = None,
        bitrate: int = 1_500_000,
    ) -> None:
        self.drones = drones
        self.make_source = make_source
        self.max_sessions = max_sessions
        self.max_per_account = max_per_account
        self.commander_slots = min(commander_slots, max_sessions)
        self._claims: dict[str, int] = {}  # slots taken by account: sessions plus offers being answered
        self.ice_servers = ice_servers or []
        self.bitrate = bitrate
        self.feeds: dict[str, _Feed] = {}
        self.sessions: dict[str, Session] = {}
        self._closing = False
        self._janitor: asyncio.Task[None] | None = None
        self._supervisor: Supervisor | None = None

    # ------------------------------------------------------------------ consumers of a drone's source
    def tap(self, drone_id: str) -> MediaStreamTrack:
        """A new consumer's track of the drone's video (starting its source if needed); give it back
        with `untap`."""
        if drone_id not in self.drones:
            raise UnknownDrone(drone_id)
        if self._closing:
            raise HubClosed("video is shutting down")
        feed = self.feeds.get(drone_id)
        if feed is None or feed.source.readyState != "live":
            feed = _Feed(self.make_source(drone_id))
            self.feeds[drone_id] = feed
            log.info("video source of %s started", drone_id)
        track = feed.relay.subscribe(feed.source, buffered=False)
        feed.consumers.add(track)
        return track

    def view(self, drone_id: str) -> MediaStreamTrack:
        """A new viewer's track of encoded packets (the drone's one encoder is started if needed); give
        it back with `unview`."""
        if drone_id not in self.drones:
            raise UnknownDrone(drone_id)
        feed = self.feeds.get(drone_id)
        if feed is None or feed.encoder is None or feed.encoder.readyState != "live":
            frames = self.tap(drone_id)
            feed = self.feeds[drone_id]
            feed.encoder = EncodedTrack(frames, self.bitrate)
            feed.packets = MediaRelay()
        gate = KeyframeGate(feed.packets.subscribe(feed.encoder, buffered=True), feed.encoder)
        feed.viewers.add(gate)
        feed.encoder.request_keyframe()  # the new viewer starts at the next frame, not seconds later
        return gate

    def unview(self, drone_id: str, track: MediaStreamTrack) -> None:
        track.stop()
        feed = self.feeds.get(drone_id)
        if feed is None:
            return
        feed.viewers.discard(track)
        if not feed.viewers and feed.encoder is not None:
            encoder, feed.encoder = feed.encoder, None
            frames = encoder._frames
            encoder.stop()
            self.untap(drone_id, frames)

    def untap(self, drone_id: str, track: MediaStreamTrack) -> None:
        track.stop()
        feed = self.feeds.get(drone_id)
        if feed is None:
            return
        feed.consumers.discard(track)
        if not feed.consumers:
            del self.feeds[drone_id]
            feed.source.stop()  # the relay's reader sees the end and finishes
            log.info("video source of %s stopped: nobody watches or records", drone_id)

    def watching(self, drone_id: str) -> int:
        """Viewers of the drone's video now."""
        feed = self.feeds.get(drone_id)
        return len(feed.viewers) if feed is not None else 0

    # ------------------------------------------------------------------ WHEP sessions
    def _configuration(self) -> RTCConfiguration:
        # An explicit empty list: aiortc would otherwise ask a public STUN server, which a closed RTCC
        # network cannot reach (gathering would wait for it before every answer).
        return RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in self.ice_servers])

    def _claim(self, viewer: Viewer, *, per_account: bool = True) -> None:
        """Take a slot for `viewer` now, before any await (raises if none is left for it)."""
        held = self._claims.get(viewer.account, 0)
        if per_account and held >= self.max_per_account:
            raise AccountLimit(
                f"{viewer.account} already has {held} video sessions (at most {self.max_per_account} per "
                "account); end one first"
            )
        taken = sum(self._claims.values())
        limit = self.max_sessions if viewer.commander else self.max_sessions - self.commander_slots
        if taken >= limit:
            kept = "" if viewer.commander else f", {self.commander_slots} of them kept for pilots and admins"
            raise TooManyViewers(f"{taken} video sessions already (limit {self.max_sessions}{kept})")
        self._claims[viewer.account] = held + 1

    def _release(self, account: str) -> None:
        left = self._claims.get(account, 0) - 1
        if left > 0:
            self._claims[account] = left
        else:
            self._claims.pop(account, None)

    async def answer(self, drone_id: str, offer_sdp: str, viewer: Viewer | None = None) -> tuple[str, str]:
        """Answer a viewer's SDP offer (after ICE gathering completes): returns (session id, answer).
        Raises `AccountLimit` or `TooManyViewers` when no slot is left for `viewer`."""
        if drone_id not in self.drones:
            raise UnknownDrone(drone_id)
        if self._closing:
            raise HubClosed("video is shutting down")
        if "m=video" not in offer_sdp:
            raise BadOffer("the offer has no video media section (m=video)")
        # No viewer: an in-process caller (a benchmark, a test), held only to the hub's total.
        who = viewer or Viewer("", commander=True)
        self._claim(who, per_account=viewer is not None)  # held while the offer is worked on
        try:
            return await self._answer(drone_id, offer_sdp, who.account)  # a session holds its own claim
        finally:
            self._release(who.account)

    async def _answer(self, drone_id: str, offer_sdp: str, owner: str) -> tuple[str, str]:
        self._start_janitor()
        pc = RTCPeerConnection(self._configuration())
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as e:
            await pc.close()
            raise BadOffer(f"the SDP offer cannot be parsed: {e}") from e
        video = [t for t in pc.getTransceivers() if t.kind == "video"]
        if not video:
            await pc.close()
            raise BadOffer("the offer has no video media section (m=video)")
        try:
            video[0].setCodecPreferences(_VP8)  # the one shared encoder's codec
        except Exception as e:
            await pc.close()
            raise BadOffer(f"the offer's video cannot be sent as VP8: {e}") from e
        track = self.view(drone_id)
        session = Session(str(uuid.uuid4()), drone_id, pc, track, owner)
        self.sessions[session.id] = session
        self._claims[owner] = self._claims.get(owner, 0) + 1  # the session's own claim (ended by `end`)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                session.connected = True
            elif pc.connectionState in ("failed", "closed"):
                await self.end(session.id)

        try:
            pc.addTrack(track)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)  # aiortc returns once ICE gathering is complete
        except Exception as e:
            await self.end(session.id)
            raise BadOffer(f"the offer cannot be answered: {e}") from e
        if "VP8/90000" not in pc.localDescription.sdp:
            await self.end(session.id)
            raise BadOffer("no common video codec: the offer must accept VP8")
        log.info("video session %s for %s opened (%d viewers)", session.id, drone_id, len(self.sessions))
        return session.id, pc.localDescription.sdp

    async def end(self, session_id: str, drone_id: str | None = None, by: Viewer | None = None) -> bool:
        """End one session (idempotent); False if there is no such session (for that drone). ``by`` given:
        raises `NotYours` unless it opened the session or is an admin."""
        session = self.sessions.get(session_id)
        if session is None or (drone_id is not None and session.drone_id != drone_id):
            return False
        if by is not None and not by.admin and by.account != session.owner:
            raise NotYours(f"video session {session_id} is another account's")
        del self.sessions[session_id]
        self._release(session.owner)
        self.unview(session.drone_id, session.track)
        await session.pc.close()
        log.info("video session %s for %s ended", session_id, session.drone_id)
        return True

    def supervise(self, supervisor: Supervisor) -> None:
        """Run the janitor as the part ``video-hub-janitor`` of `supervisor`: one that dies is logged and
        restarted, else sessions that never connect would hold their viewer slots for good."""
        self._supervisor = supervisor

    def _start_janitor(self) -> None:
        """Started with the first session; it ends by itself once no session is left."""
        sup = self._supervisor
        if sup is not None:
            part = sup.parts.get(JANITOR_PART)
            if part is None or part.state in (PartState.STOPPED, PartState.FAILED):
                sup.spawn(JANITOR_PART, self._sweep)
        elif self._janitor is None or self._janitor.done():
            self._janitor = asyncio.create_task(self._sweep(), name=JANITOR_PART)

    async def _sweep(self) -> None:
        """Drop sessions whose peer never connected; the others end by their connection state.

        It looks first after one period: it is started while the first offer is being answered, before
        that session exists, and must not end at once for want of sessions."""
        try:
            await self._sweep_while_sessions()
        finally:
            if self._supervisor is not None and not self.sessions:
                self._supervisor.ending(JANITOR_PART)  # nothing left to sweep: a stop, not a failure

    async def _sweep_while_sessions(self) -> None:
        while True:
            await asyncio.sleep(CONNECT_TIMEOUT_S / 3)  # the sweep's period, not a synchronisation
            if not self.sessions:
                return
            now = time.monotonic()
            for s in list(self.sessions.values()):
                if not s.connected and now - s.created > CONNECT_TIMEOUT_S:
                    log.info("video session %s never connected; dropped", s.id)
                    try:
                        await self.end(s.id)
                    except Exception:
                        log.exception("dropping video session %s failed", s.id)

    # ------------------------------------------------------------------ shutdown
    async def close(self) -> None:
        """Refuse new sessions, close every peer connection, stop every source (idempotent)."""
        self._closing = True
        if self._supervisor is not None:
            await self._supervisor.stop_part(JANITOR_PART)
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._janitor
        results = await asyncio.gather(
            *(self.end(sid) for sid in list(self.sessions)), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException):
                log.warning("closing a video session failed: %s", r)
        for drone_id, feed in list(self.feeds.items()):
            for viewer in list(feed.viewers):
                self.unview(drone_id, viewer)
            for track in list(feed.consumers):
                self.untap(drone_id, track)
