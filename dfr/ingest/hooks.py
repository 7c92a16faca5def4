"""What runs after a report is committed (the dispatcher, the live feed), run one way for every ingest path.

A report that is committed is the caller's success: whatever a subscriber does with it afterwards, the
HTTP caller gets its 201/200 and the MQTT report its PUBACK. So each hook runs isolated: one that raises
is logged with its name and counted, and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from dfr.store.store import IngestResult

log = logging.getLogger(__name__)

IngestHook = Callable[[IngestResult], Awaitable[None]]


@dataclass
class HookFailures:
    """Failures per hook name since start (for logs, health and tests)."""

    by_hook: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> None:
        self.by_hook[name] = self.by_hook.get(name, 0) + 1


FAILURES = HookFailures()


def _name(hook: IngestHook) -> str:
    return str(getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None) or repr(hook))


async def run_hooks(hooks: Iterable[IngestHook], result: IngestResult, where: str) -> None:
    """Await each hook with the committed result; a failing one is logged, counted and skipped."""
    for hook in hooks:
        try:
            await hook(result)
        except Exception:
            name = _name(hook)
            FAILURES.add(name)
            log.exception(
                "%s: hook %s failed for incident %s (the report is stored)", where, name, result.incident.id
            )
