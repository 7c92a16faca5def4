"""Service settings, read from the environment (prefix ``DFR_``) so that one image runs anywhere.

Every limit that decides whether a report is accepted or merged lives here rather than in code, because
an agency tunes them to its own sensors and call volume (a dense downtown wants a smaller merge radius
than a rural county), and an operator must be able to see in one place what the service will refuse.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of the dfr service; each field is ``DFR_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="DFR_", extra="ignore", frozen=True)

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
    session_ttl_s: float = Field(
        default=12 * 3600.0,
        ge=60,
        le=30 * 86_400,
        description="A sign-in lasts this long (a pilot's shift); then the panel asks again.",
    )
