"""A watcher's captures in list order (creation time, then key) straight from an index: GET
list and its `$top`/`$skipToken` pages read a watcher's rows without sorting them.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_packet_captures_list_order", "packet_captures", ["watcher_key", "created_at", "key"])


def downgrade() -> None:
    op.drop_index("ix_packet_captures_list_order", "packet_captures")
