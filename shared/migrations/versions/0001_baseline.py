"""The registry as PacketWatch 0.1.0 made it before migrations (metadata.create_all).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "packet_captures",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("arm_id", sa.String(512), nullable=False),
        sa.Column("watcher_key", sa.String(512), nullable=False, index=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("target_key", sa.String(512), nullable=False, index=True),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("capture_start_time", sa.DateTime(timezone=True)),
        sa.Column("stop_reason", sa.String(64)),
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("error_message", sa.Text),
        sa.Column("summary", sa.Text),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("storage_path", sa.Text),
        sa.Column("stop_requested", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "agents",
        sa.Column("vm_key", sa.String(512), primary_key=True),
        sa.Column("vm_id", sa.String(512), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("running", sa.Text, nullable=False),
    )
    op.create_table(
        "alert_captures",
        sa.Column("vm_key", sa.String(512), primary_key=True),
        sa.Column("rule_key", sa.String(255), primary_key=True),
        sa.Column("capture_id", sa.String(512), nullable=False),
    )


def downgrade() -> None:
    for table in ("alert_captures", "agents", "packet_captures"):
        op.drop_table(table)
