"""The dfr HTTP API (FastAPI): incident ingest and queries under /api/v1."""

from dfr.api.app import create_app

__all__ = ["create_app"]
