"""What Slurm gave each job (nsml_hpc.catalog.allocations): the ``job_allocation`` table.

Releases between the baseline and migrations made this table with ``create_all`` while their
catalogs still said schema version 1, so such a catalog, stamped with the baseline, may have
it already: it is made only where it is missing.

Revision ID: 0003_job_allocation
Revises: 0002_teams
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_job_allocation"
down_revision = "0002_teams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("job_allocation"):
        return
    op.create_table(
        "job_allocation",
        sa.Column("job_row_id", sa.Integer(), nullable=False),
        sa.Column("partition", sa.String(length=200), nullable=True),
        sa.Column("account", sa.String(length=200), nullable=True),
        sa.Column("qos", sa.String(length=200), nullable=True),
        sa.Column("gpus", sa.Integer(), nullable=True),
        sa.Column("time_limit", sa.String(length=64), nullable=True),
        sa.Column("nodes", sa.Integer(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["job_row_id"], ["job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_row_id"),
    )


def downgrade() -> None:
    raise NotImplementedError(
        "catalogs are only upgraded; to go back, restore the copy taken before the upgrade"
    )
