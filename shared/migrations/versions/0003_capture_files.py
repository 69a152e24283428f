"""The files of continuous captures: each file an agent closes, what it holds, and where it
was stored.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capture_files",
        sa.Column("capture_key", sa.String(512), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("packets", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("storage_path", sa.Text),
        sa.Column("upload_error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("capture_files")
