"""Service settings, read from the environment (prefix ``DFR_``) so that one image runs anywhere.

Every limit that decides whether a report is accepted or merged lives here rather than in code, because
an agency tunes them to its own sensors and call volume (a dense downtown wants a smaller merge radius
than a rural county), and an operator must be able to see in one place what the service will refuse.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MIN_SECRET_LENGTH", "Settings"]

MIN_SECRET_LENGTH = 16


class Settings(BaseSettings):
    """Configuration of the dfr service; each field is ``DFR_<NAME>`` in the environment."""

    # hide_input_in_errors: a refused setting must not print a secret into a log
    model_config = SettingsConfigDict(
        env_prefix="DFR_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/dfr.sqlite",
        description="SQLAlchemy URL; sqlite+aiosqlite (the default, a file) or postgresql+asyncpg.",
    )
    area: str = Field(
        default="missions/areas/chula-vista.yaml", description="Area file (docks, drones, zones)."
    )
    policy: str = Field(default="missions/policies/default.yaml", description="Launch policy file.")
    mavlink_base_port: int = Field(
        default=14540, ge=1024, le=65000, description="Drone i listens on udpin://mavlink_host:base+i-1."
    )
    mavlink_host: str = Field(default="127.0.0.1", description="Address MAVSDK listens on for the drones.")
    time_scale: float = Field(
        default=1.0,
        ge=1.0,
        le=100.0,
        description="Simulated-time speed-up (1 for real drones; tests use 10+).",
    )
    http_host: str = Field(default="127.0.0.1")
    http_port: int = Field(default=8000, ge=0, le=65535)
    mqtt_url: str | None = Field(
        default=None, description="Broker for the MQTT ingest, e.g. mqtt://broker:1883; None disables it."
    )
    merge_radius_m: float = Field(
        default=250.0,
        gt=0,
        le=10_000,
        description="Reports closer than this to an open incident (great-circle) may join it.",
    )
    merge_window_s: float = Field(
        default=600.0,
        ge=0,
        le=86_400,
        description="...and only if reported within this many seconds of the incident's reports.",
    )
    max_payload_bytes: int = Field(
        default=16_384,
        ge=256,
        le=1_048_576,
        description="Larger report bodies are refused unread; a real report is well under 4 KiB.",
    )
    max_incident_age_s: float = Field(
        default=86_400.0,
        gt=0,
        le=315_360_000,  # ten years: bounded so that date arithmetic cannot overflow
        description="Reports older than this are refused: too stale to send a drone to.",
    )
    max_future_skew_s: float = Field(
        default=120.0,
        ge=0,
        le=86_400,
        description="Tolerated clock skew of senders; reports further in the future are refused.",
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Per-source HMAC secrets for POST /api/v1/webhooks/incidents, as JSON "
        '(DFR_WEBHOOK_SECRETS=\'{"shotspotter": "..."}\'); never logged.',
    )

    @field_validator("webhook_secrets")
    @classmethod
    def _strong_secrets(cls, secrets: dict[str, SecretStr]) -> dict[str, SecretStr]:
        """Refuse to start with a guessable webhook secret: an HMAC is only as strong as its key."""
        weak = sorted(src for src, s in secrets.items() if len(s.get_secret_value()) < MIN_SECRET_LENGTH)
        if weak:
            raise ValueError(
                f"webhook secrets must be at least {MIN_SECRET_LENGTH} characters; too short for: "
                + ", ".join(weak)
            )
        return secrets

    webhook_window_s: float = Field(
        default=300.0, ge=5, le=3600, description="Signed webhooks older (or newer) than this are refused."
    )
    ingest_rate_per_min: float = Field(
        default=3000.0, ge=0, description="Reports a minute per account or webhook source (0: unlimited)."
    )
    login_rate_per_min: float = Field(
        default=10.0, ge=0, description="Sign-in attempts a minute per username and address (0: unlimited)."
    )
    # A sign-in costs a scrypt hash (~0.4 s of a core) whether or not the account exists, so the limits
    # below refuse a flood before it costs one: per address across usernames (password spraying), per
    # username across addresses, for the whole service, and how many may be checked at the same time.
    login_client_rate_per_min: float = Field(
        default=30.0, ge=0, description="Sign-in attempts a minute per client address, all usernames."
    )
    login_user_rate_per_min: float = Field(
        default=30.0, ge=0, description="Sign-in attempts a minute per username, all addresses."
    )
    login_global_rate_per_min: float = Field(
        default=120.0, ge=0, description="Sign-in attempts a minute for the whole service (0: unlimited)."
    )
    login_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Sign-ins checked at once (one per client address); more are refused with 503.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For is believed, as JSON "
        '(DFR_TRUSTED_PROXIES=\'["10.0.0.5", "10.1.0.0/24"]\'); none by default: the peer\'s address counts.',
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {entry!r}") from None
        return entries

    trusted_origins: list[str] = Field(
        default_factory=list,
        description="Other origins (https://host:port) whose pages may use a signed-in panel cookie to "
        "change things, as JSON; by default only the service's own origin may.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="Largest request body on any route; larger ones get 413 unread (reports have their "
        "own, smaller max_payload_bytes).",
    )
    area_margin_m: float = Field(
        default=2000.0,
        ge=0,
        le=100_000,
        description="Reports further than this outside the operating area are refused (422).",
    )
    api_docs: bool = Field(
        default=True,
        description="Serve the interactive API documentation at /docs and /redoc (from packaged files, "
        "no CDN); the OpenAPI document itself is always at /openapi.json.",
    )
    session_ttl_s: float = Field(
        default=12 * 3600.0,
        ge=60,
        le=30 * 86_400,
        description="A sign-in lasts this long (a pilot's shift); then the panel asks again.",
    )
    panel_tile_url: str | None = Field(
        default=None,
        max_length=500,
        pattern=r"^https?://[^\s\"'<>]+$",
        description="Base-map tiles for the panel, e.g. https://tiles.example/{z}/{x}/{y}.png; None: no "
        "tiles, the map shows the area's vector layers on a plain background (closed networks).",
    )
    panel_tile_attribution: str = Field(
        default="", max_length=300, description="Attribution shown on the map for those tiles."
    )
    # --- live video (dfr.video, issue 4) ---
    # 640x480 at 15 fps by default: every drone in the air has a source (rendered or decoded) and an
    # evidence encode, and on a 2-core controller 1280x720 at 30 fps for four drones starved the dispatcher
    # (dispatch p50 9.4 s under load, against 20 ms at this default; see README, "Load"). Raise them on a
    # machine with cores to spare.
    video_width: int = Field(default=640, ge=160, le=3840, multiple_of=2, description="Video width, px.")
    video_height: int = Field(default=480, ge=120, le=2160, multiple_of=2, description="Video height, px.")
    video_fps: float = Field(default=15.0, ge=1.0, le=60.0, description="Frames per second of each source.")
    video_overlay: bool = Field(default=True, description="Burn the telemetry overlay into the video.")
    video_transit_mode: Literal["off", "blur", "blank"] = Field(
        default="off",
        description="Privacy: blur or blank the picture until the drone's mission is on scene (off: never).",
    )
    video_recording: bool = Field(
        default=True, description="Record each mission's video as evidence (SHA-256 in the audit log)."
    )
    video_evidence_dir: str = Field(default="var/evidence", description="Where mission recordings go.")
    video_record_fps: float = Field(
        default=10.0,
        ge=1.0,
        le=60.0,
        description="Frame rate of the evidence recording (at most video_fps): every drone in the air is "
        "recorded at once, and 10 fps keeps a four-drone fleet's recording to a fraction of a core.",
    )
    video_bitrate_kbps: int = Field(
        default=0, ge=0, le=20_000, description="VP8 bitrate sent to viewers; 0: from size and frame rate."
    )
    video_max_viewers: int = Field(
        default=64, ge=1, le=1000, description="WHEP sessions at once, all drones together."
    )
    video_max_viewers_per_account: int = Field(
        default=4, ge=1, le=1000, description="WHEP sessions one account may hold at once."
    )
    video_commander_slots: int = Field(
        default=8,
        ge=0,
        le=1000,
        description="Of video_max_viewers, sessions only pilots and admins may take, so that a crowd of "
        "viewers never locks the pilot in command out of the video.",
    )
    video_ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN URLs for viewers behind NAT, as JSON "
        "(DFR_VIDEO_ICE_SERVERS='[\"stun:host:3478\"]'); none by default (a closed network needs none).",
    )
