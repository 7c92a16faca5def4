"""Dispatch: from an incident to a drone over the scene and back (policy, choice, flight)."""
