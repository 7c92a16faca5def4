"""Pilot override: a human takes any drone from the automation, commands it, and hands it back.

`validation` holds the pure checks against the operating area; `commands` runs one command through
the dispatcher (which owns pilot control) and the fleet, and audits it. The HTTP face is
`dfr.api.command_routes`.
"""
