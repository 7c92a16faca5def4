"""Who may report as which source: the identity of incident sources for session-authenticated callers.

``(source, external_id)`` is a report's idempotency key, so whoever may write a source's name may also
pre-empt that source's ids: a report sent first under a genuine sensor's id wins, and the genuine one is
then only a "repeat". A webhook secret is issued per source, so the signed webhook already binds a source
to its signer (`dfr.api.webhook_routes`). For accounts the rule is:

- a **feed account bound to sources** (``dfr user add NAME --role feed --source shotspotter``) may report
  as those sources and no other;
- **any other caller** (an unbound feed account, a pilot or admin entering a manual report) may report as
  any source that nobody owns, where owned means: bound to some account, or signed for by a webhook secret.

So a pilot types reports as ``console:rtcc-3`` or ``manual`` as before, and cannot speak for ShotSpotter.
Refusals are 403 with the reason, and nothing is stored.
"""

from __future__ import annotations

from fastapi import HTTPException

from dfr.auth import Principal
from dfr.auth.users import UserStore
from dfr.settings import Settings

__all__ = ["check_source"]


def _refused(reason: str) -> HTTPException:
    return HTTPException(
        403, detail={"code": "forbidden", "reason": reason, "field": "source", "position": None, "errors": []}
    )


async def check_source(who: Principal, source: str, users: UserStore, settings: Settings) -> None:
    """Raise 403 unless `who` may report as `source` (see the module docstring)."""
    mine, bound_elsewhere = await users.source_binding(who.username, source)
    if mine:  # only feed accounts have sources (dfr.auth.users.check_sources)
        if source not in mine:
            allowed = ", ".join(sorted(mine))
            raise _refused(f"{who.username} may report only as {allowed}, not as {source!r}")
        return
    if source in settings.webhook_secrets:
        raise _refused(f"source {source!r} reports through its signed webhook; accounts may not report as it")
    if bound_elsewhere:
        raise _refused(f"source {source!r} is bound to another feed account")
