"""Who may change a session: its owner, and the catalog's admins. Nobody else.

The model (docs/teams.md):

- Every session has an owner, the catalog user who submitted it (``session.owner``): the
  login name, or on a PostgreSQL catalog with row-level security the database role.
- Reading is shared: everyone with access to the catalog sees every session, its state and
  its metrics (a team leaderboard is the point of sharing).
- Changing is the owner's: stop, rm, rm --purge, memo, fork-from, snapshot pin/unpin,
  snapshot delete and gc act only on the caller's own sessions. Another user's session is
  refused with one line (exit 6) before anything is touched.
- Admins: users named in the catalog's ``catalog_admin`` table (set by the team's admin with
  ``nsml-hpc catalog setup-team --admin NAME``) may act on every session. On PostgreSQL the
  database enforces the same rule (nsml_hpc.catalog.team), so a client that skips these checks
  is refused there too; a SQLite catalog can only be guarded by its file's permissions.
"""

from __future__ import annotations

from sqlmodel import select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import full_name
from nsml_hpc.catalog.team_models import CatalogAdmin
from nsml_hpc.errors import PermissionRefused


def catalog_admins(catalog: Catalog) -> list[str]:
    """The users the catalog allows to act on everyone's sessions."""
    with catalog.session() as db:
        return sorted(db.exec(select(CatalogAdmin.name)).all())


def is_admin(catalog: Catalog) -> bool:
    with catalog.session() as db:
        return db.get(CatalogAdmin, catalog.user) is not None


def may_change(catalog: Catalog, record: SessionRecord) -> bool:
    return record.owner == catalog.user or is_admin(catalog)


def check_owner(catalog: Catalog, record: SessionRecord, action: str) -> None:
    """Refuse (PermissionRefused, one line) unless the caller owns ``record`` or is an admin."""
    if not may_change(catalog, record):
        raise PermissionRefused(
            f"{full_name(record)} belongs to {record.owner}: only its owner or a catalog "
            f"admin may {action} it (you are {catalog.user}); nothing was changed"
        )


__all__ = ["catalog_admins", "check_owner", "is_admin", "may_change"]
