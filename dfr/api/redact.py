"""What of an audit record an API caller sees: no file-system paths of the server.

Audit details are written by many parts (the evidence recorder writes the recording's absolute path, and
error reasons may quote paths). The record itself keeps them (it is hash-chained, and the operators on the
server need them); answers over the API show only file names, because where the server keeps its files
tells a viewer's stolen session about the machine and helps nobody at a console.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from dfr.store import AuditEntry

__all__ = ["public_details", "public_entry"]

# A POSIX or Windows absolute path's directories (not the "//" of a URL, not a relative name).
_DIRECTORIES = re.compile(r"(?<![\w:/.\\])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"<>|]+[/\\])+")


def _public(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key == "path":
            return PurePath(value).name
        return _DIRECTORIES.sub("", value)
    if isinstance(value, dict):
        return public_details(value)
    if isinstance(value, list):
        return [_public(key, v) for v in value]
    return value


def public_details(details: dict[str, Any]) -> dict[str, Any]:
    return {k: _public(k, v) for k, v in details.items()}


def public_entry(entry: AuditEntry) -> AuditEntry:
    return entry.model_copy(update={"details": public_details(entry.details)})
