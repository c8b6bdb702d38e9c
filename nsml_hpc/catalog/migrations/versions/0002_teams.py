"""Teams: every session has an owner, numbered per owner and project; polls per user; the
catalog's admins; what ingestion refused.

- ``session.owner``: the catalog user who owns the session, filled from ``session.user`` (the
  cluster account) for sessions made before; except in a SQLite catalog whose sessions all ran
  as ONE cluster account (a personal catalog, the default): those are the login user's who
  opens it first, so a laptop user whose cluster account has another name keeps their
  sessions (a shared SQLite catalog holds several accounts: each keeps its own).
  ``project/N`` is unique per owner now (``uq_session_owner_project_number`` replaces
  ``uq_session_project_number``) and ``name`` is no longer unique on its own.
- ``cluster_poll`` is keyed by (cluster, user): each user's sync asks Slurm about that user's
  sessions, on its own floor (the old rows were a cache: dropped).
- ``catalog_admin``: users allowed to act on everyone's sessions.
- ``ingest_problem``: the first refused lines per session and file, with their numbers.
- ``catalog_meta.schema_version`` becomes 2, so nsml-hpc 0.1 refuses the upgraded catalog
  ("newer than this nsml-hpc understands") instead of writing sessions without an owner.

Revision ID: 0002_teams
Revises: 0001_baseline
Create Date: 2026-12-01
"""

from __future__ import annotations

import getpass

import sqlalchemy as sa
from alembic import op

revision = "0002_teams"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("session") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
    op.execute('UPDATE session SET owner = "user"')
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        accounts = bind.execute(sa.text('SELECT COUNT(DISTINCT "user") FROM session')).scalar()
        if accounts == 1:
            bind.execute(sa.text("UPDATE session SET owner = :me"), {"me": getpass.getuser()})
    with op.batch_alter_table("session") as batch:
        batch.alter_column("owner", existing_type=sa.String(length=64), nullable=False)
        batch.drop_constraint("uq_session_project_number", type_="unique")
        batch.create_unique_constraint(
            "uq_session_owner_project_number", ["owner", "project", "number"]
        )
        batch.drop_index("ix_session_name")
        batch.create_index("ix_session_name", ["name"], unique=False)
        batch.create_index("ix_session_owner", ["owner"], unique=False)

    op.drop_table("cluster_poll")
    op.create_table(
        "cluster_poll",
        sa.Column("cluster", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("last_query_at", sa.Float(), nullable=False),
        sa.Column("last_ok", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("queries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cluster", "user"),
    )
    op.create_table(
        "catalog_admin",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "ingest_problem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ingest_problem_session_id", "ingest_problem", ["session_id"], unique=False)
    op.execute("DELETE FROM catalog_meta WHERE key = 'schema_version'")
    op.execute("INSERT INTO catalog_meta (key, value) VALUES ('schema_version', '2')")


def downgrade() -> None:
    raise NotImplementedError(
        "catalogs are only upgraded; to go back, restore the copy taken before the upgrade"
    )
