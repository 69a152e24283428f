"""The Azure region each agent reports (its VM's location: network watchers are regional),
and what each of its running captures has written so far.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as agents:
        agents.add_column(sa.Column("location", sa.String(64)))
        agents.add_column(sa.Column("progress", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("agents") as agents:
        agents.drop_column("progress")
        agents.drop_column("location")
