"""One index for a watcher's captures: the list order index (0005) begins with watcher_key,
so it serves every lookup by watcher. The single-column index on watcher_key is dropped: with
it, PostgreSQL planned a `$top` page from stale statistics (after a bulk load) as a bitmap
scan of the watcher's whole list and a sort (13.5 ms at 10,000 captures) instead of reading
the first rows of the list order index (0.14 ms).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_packet_captures_watcher_key", "packet_captures")


def downgrade() -> None:
    op.create_index("ix_packet_captures_watcher_key", "packet_captures", ["watcher_key"])
