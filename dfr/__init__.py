"""dfr: Drone-as-First-Responder mission controller."""

__version__ = "0.1.0"
