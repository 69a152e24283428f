"""Each capture's properties as GET list shows them, stored with the capture: the list of a
watcher with 100,000 captures is read, not rebuilt item by item. Rows of earlier versions
keep null here and are built from their parameters as before.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("packet_captures", sa.Column("listed", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("packet_captures", "listed")
