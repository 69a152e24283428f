"""The registry's tables (SQLAlchemy Core), declared once for the registry and its outbox.
A change here comes with a migration in shared/migrations/versions (`packetwatch db upgrade`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

captures = Table(
    "packet_captures", metadata,
    Column("key", String(512), primary_key=True),
    Column("arm_id", String(512), nullable=False),
    Column("watcher_key", String(512), nullable=False),  # looked up through the list order index
    Column("name", String(80), nullable=False),
    Column("target_key", String(512), nullable=False, index=True),
    Column("parameters", Text, nullable=False),
    # The properties as GET list shows them, written with the capture (migration 0006); null
    # in rows of earlier versions, which the list builds from `parameters`.
    Column("listed", Text),
    Column("status", String(16), nullable=False),
    Column("capture_start_time", DateTime(timezone=True)),
    Column("stop_reason", String(64)),
    Column("errors", Text, nullable=False, default="[]"),
    Column("error_message", Text),
    Column("summary", Text),
    Column("etag", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("storage_path", Text),
    Column("stop_requested", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# GET list and its pages read a watcher's captures in this order (migration 0005); every lookup
# by watcher uses it (0007 dropped the single-column index).
Index("ix_packet_captures_list_order", captures.c.watcher_key, captures.c.created_at, captures.c.key)

agents = Table(
    "agents", metadata,
    Column("vm_key", String(512), primary_key=True),
    Column("vm_id", String(512), nullable=False),
    Column("version", String(32), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("running", Text, nullable=False, default="[]"),
    Column("interface", String(64)),
    Column("location", String(64)),
    Column("progress", Text),
)

alert_captures = Table(
    "alert_captures", metadata,
    Column("vm_key", String(512), primary_key=True),
    Column("rule_key", String(255), primary_key=True),
    Column("capture_id", String(512), nullable=False),
)

# The transactional outbox: a message to the broker, written in the same transaction as
# the state change it announces, removed once the broker has confirmed it. Whoever sends
# it holds a short lease first, so a message is sent by one sender at a time; the control
# worker relays what an API process left behind once its lease has run out.
outbox = Table(
    "outbox", metadata,
    Column("id", String(64), primary_key=True),
    Column("capture_key", String(512), nullable=False, index=True),
    Column("run_id", String(64), nullable=False),
    Column("task", String(64), nullable=False),
    Column("queue", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=False, index=True),
)

# The files of a continuous capture, one row per file its agent closed.
capture_files = Table(
    "capture_files", metadata,
    Column("capture_key", String(512), primary_key=True),
    Column("run_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("packets", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("storage_path", Text),
    Column("upload_error", Text),
)
