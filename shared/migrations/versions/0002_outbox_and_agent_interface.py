"""The transactional outbox (capture and stop requests recorded with their capture), and the
interface each agent reports.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("capture_key", sa.String(512), nullable=False, index=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    with op.batch_alter_table("agents") as agents:
        agents.add_column(sa.Column("interface", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as agents:
        agents.drop_column("interface")
    op.drop_table("outbox")
