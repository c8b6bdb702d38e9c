"""Retired session numbers get a table of their own (``retired_number``: owner, project,
number), which row-level security lets each team member write for themself: catalog_meta,
where revision 0004's ``rm`` kept them, is read-only to members, so a member's ``rm --purge``
on a team catalog failed. The old keys stay in catalog_meta and are still read.

Revision ID: 0006_retired_number
Revises: 0005_slurm_clock
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_retired_number"
down_revision = "0005_slurm_clock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_number",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "project"),
    )


def downgrade() -> None:
    raise NotImplementedError(
        "catalogs are only upgraded; to go back, restore the copy taken before the upgrade"
    )
