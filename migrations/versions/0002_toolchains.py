"""toolchain registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "toolchains",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("signatures", sa.LargeBinary(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("install_dir", sa.Text(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_detail", sa.JSON(), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_full_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('verified', 'quarantined')", name=op.f("ck_toolchains_state_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_toolchains")),
        sa.UniqueConstraint("node", "name", name="uq_toolchains_node_name"),
    )
    with op.batch_alter_table("toolchains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_toolchains_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("toolchains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_toolchains_state"))
    op.drop_table("toolchains")
