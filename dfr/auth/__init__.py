"""Sign-in, roles and sessions: who may see and who may command.

Roles (`Role`): viewer (sees all, commands nothing), pilot (commands drones, approves launches), admin
(also manages users), feed (integration account that may only submit incidents). Routes declare the role
they need with `ViewerDep`, `PilotDep`, `AdminDep` or `FeedDep`; accounts live in the service database
(`dfr.auth.users.UserStore`) and are created with ``dfr user add``.
"""

from dfr.auth.deps import COOKIE, AdminDep, FeedDep, PilotDep, ViewerDep, require_role
from dfr.auth.principal import COMMANDERS, READERS, Principal, Role

__all__ = [
    "COMMANDERS",
    "COOKIE",
    "READERS",
    "AdminDep",
    "FeedDep",
    "PilotDep",
    "Principal",
    "Role",
    "ViewerDep",
    "require_role",
]
