"""The Slurm clock of each user on each cluster (nsml_hpc.catalog.clock_models): when a user's
action or the run directories last asked for Slurm, the ceiling's token bucket, when squeue
last re-read pending reasons, and two counters.

Revision ID: 0005_slurm_clock
Revises: 0004_issue12_tables
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_slurm_clock"
down_revision = "0004_issue12_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slurm_clock",
        sa.Column("cluster", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("wanted_at", sa.Float(), nullable=False),
        sa.Column("wanted_why", sa.Text(), nullable=True),
        sa.Column("tokens", sa.Float(), nullable=True),
        sa.Column("tokens_at", sa.Float(), nullable=False),
        sa.Column("last_queue_at", sa.Float(), nullable=False),
        sa.Column("commands", sa.Integer(), nullable=False),
        sa.Column("deferred", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cluster", "user"),
    )


def downgrade() -> None:
    raise NotImplementedError(
        "catalogs are only upgraded; to go back, restore the copy taken before the upgrade"
    )
