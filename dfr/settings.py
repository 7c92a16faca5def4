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
