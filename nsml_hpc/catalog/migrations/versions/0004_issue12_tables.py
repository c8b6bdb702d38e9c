"""Issue 12's tables: dataset versions (``dataset_version``), the version each session reads
(``session_dataset``), sessions that capture printed metrics (``stdout_capture``), and the
checkpoint files found in a session's code folder (``found_checkpoint``, beside their snapshot
rows). New tables only; a catalog that an intermediate build made them in keeps them.

Revision ID: 0004_issue12_tables
Revises: 0003_job_allocation
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_issue12_tables"
down_revision = "0003_job_allocation"
branch_labels = None
depends_on = None


def _missing(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _missing("dataset_version"):
        op.create_table(
            "dataset_version",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("cluster", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("bytes", sa.BigInteger(), nullable=False),
            sa.Column("file_count", sa.Integer(), nullable=False),
            sa.Column("digest", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("created_by", sa.String(length=64), nullable=False),
            sa.Column("source", sa.Text(), nullable=False),
            sa.Column("deleting", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("cluster", "name", "version", name="uq_dataset_version"),
        )
        op.create_index("ix_dataset_version_cluster", "dataset_version", ["cluster"])
    if _missing("session_dataset"):
        op.create_table(
            "session_dataset",
            sa.Column("session_id", sa.Integer(), nullable=False),
            sa.Column("cluster", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("staged", sa.Boolean(), nullable=False),
            sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("session_id"),
        )
        op.create_index("ix_session_dataset_name", "session_dataset", ["name"])
    if _missing("stdout_capture"):
        op.create_table(
            "stdout_capture",
            sa.Column("session_id", sa.Integer(), nullable=False),
            sa.Column("pattern", sa.Text(), nullable=True),
            sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("session_id"),
        )
    if _missing("found_checkpoint"):
        op.create_table(
            "found_checkpoint",
            sa.Column("snapshot_id", sa.Integer(), nullable=False),
            sa.Column("session_id", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["snapshot_id"], ["snapshot.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("snapshot_id"),
        )
        op.create_index("ix_found_checkpoint_session_id", "found_checkpoint", ["session_id"])


def downgrade() -> None:
    raise NotImplementedError(
        "catalogs are only upgraded; to go back, restore the copy taken before the upgrade"
    )
