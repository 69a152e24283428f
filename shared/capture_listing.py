"""Listing a watcher's captures at fleet size.

One SELECT of the columns ARM shows, each item built from the JSON the registry stored (no
per-record model round trip: the stored parameters are the validated model's own JSON, so
dropping its nulls gives exactly what `to_arm` would). Pages are keyset pages in list order
(creation time, then key): `$top` items after the opaque `$skipToken`, stable while captures
are added or deleted. `$expand=status` puts each capture's status beside it, so a console
needs one request per refresh instead of one per capture.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine, Row

from shared.arm import PcStatus, format_arm_time
from shared.errors import InvalidField
from shared.registry_records import as_utc
from shared.registry_schema import agents, captures

MAX_TOP = 1000
LISTED = (captures.c.key, captures.c.arm_id, captures.c.name, captures.c.parameters, captures.c.etag,
          captures.c.storage_path, captures.c.created_at)
STATUS = (captures.c.status, captures.c.capture_start_time, captures.c.stop_reason, captures.c.errors,
          captures.c.error_message, captures.c.summary, captures.c.run_id, captures.c.target_key)


@dataclass(frozen=True)
class PageRequest:
    """Which part of the list: everything (top None), or `top` items after `after`."""

    top: int | None = None
    after: tuple[datetime, str] | None = None
    expand_status: bool = False

    @classmethod
    def parse(cls, top: str | None, skip_token: str | None, expand: str | None) -> "PageRequest":
        if top is not None and not (top.isdigit() and 1 <= int(top) <= MAX_TOP):
            raise InvalidField("$top", top, f"must be a whole number from 1 to {MAX_TOP}")
        if expand is not None and expand.lower() != "status":
            raise InvalidField("$expand", expand, "only 'status' can be expanded")
        after = None
        if skip_token is not None:
            try:
                when, key = json.loads(base64.urlsafe_b64decode(skip_token.encode() + b"==="))
                after = (datetime.fromisoformat(when), str(key))
            except (ValueError, TypeError, binascii.Error):
                raise InvalidField("$skipToken", skip_token, "is not a token this list gave "
                                   "(use the nextLink as it is)") from None
        return cls(int(top) if top is not None else None, after, expand is not None)


@dataclass(frozen=True)
class Page:
    items: list[str]  # each capture's JSON
    skip_token: str | None  # where the next page starts; None on the last page


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_nulls(inner) for key, inner in value.items() if inner is not None}
    if isinstance(value, list):
        return [without_nulls(inner) for inner in value]
    return value


def list_page(engine: Engine, watcher_path: str, request: PageRequest,
              planned_path: Callable[[dict[str, Any], datetime], str | None],
              full_status: Callable[[str], dict[str, Any]]) -> Page:
    """A watcher's captures as ARM lists them. `planned_path` gives a capture's blob URL before
    its upload; `full_status` queryStatus's answer for a capture made of parts (a scale set's
    instances, a continuous capture's files)."""
    query = select(*LISTED, *(STATUS if request.expand_status else ())) \
        .where(captures.c.watcher_key == watcher_path.lower()).order_by(captures.c.created_at, captures.c.key)
    if request.after is not None:
        when, key = request.after
        query = query.where(or_(captures.c.created_at > when,
                                and_(captures.c.created_at == when, captures.c.key > key)))
    if request.top is not None:
        query = query.limit(request.top + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        live = _live_progress(conn, rows) if request.expand_status else {}
    token = None
    if request.top is not None and len(rows) > request.top:
        rows = rows[:request.top]
        last = rows[-1]
        token = base64.urlsafe_b64encode(json.dumps([as_utc(last.created_at).isoformat(),  # type: ignore[union-attr]
                                                     last.key]).encode()).decode().rstrip("=")
    items = []
    for row in rows:
        status = None
        if request.expand_status:
            parameters = json.loads(row.parameters)
            if row.status == PcStatus.UNKNOWN.value or parameters.get("continuousCapture") is not None:
                status = {key: value for key, value in full_status(row.arm_id).items() if key not in ("name", "id")}
            else:
                status = _status(row, parameters, live.get(row.run_id))
        items.append(_item(row, planned_path, status))
    return Page(items, token)


def _item(row: Row, planned_path: Callable[[dict[str, Any], datetime], str | None],
          status: dict[str, Any] | None) -> str:
    """One capture's JSON. Most are the stored parameters as they are, with provisioningState
    added; one with a blob (stored or planned), a status, or nulls stored by an earlier version
    is parsed and built."""
    text = row.parameters
    if status is None and not row.storage_path and '"storageId"' not in text and ":null" not in text:
        return (f'{{"name":{_quoted(row.name)},"id":{_quoted(row.arm_id)},"etag":{_quoted(row.etag)},'
                f'"properties":{text[:-1]},"provisioningState":"Succeeded"}}}}')
    properties = without_nulls(json.loads(text))
    properties["provisioningState"] = "Succeeded"
    path = row.storage_path or planned_path(properties, as_utc(row.created_at))  # type: ignore[arg-type]
    if path:
        properties["storageLocation"]["storagePath"] = path
    item = {"name": row.name, "id": row.arm_id, "etag": row.etag, "properties": properties}
    if status is not None:
        item["packetWatchStatus"] = status
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def _quoted(text: str) -> str:
    """A JSON string of a validated name, ID or etag (no control characters can be in one)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _status(row: Row, parameters: dict[str, Any], progress: dict[str, int] | None) -> dict[str, Any]:
    """What queryStatus says of a one-file capture, from its row (and its agent's last progress
    report while it runs), without the explanation queryStatus adds while it is NotStarted."""
    status: dict[str, Any] = {"packetCaptureStatus": row.status, "packetCaptureError": json.loads(row.errors)}
    if row.capture_start_time is not None:
        status["captureStartTime"] = format_arm_time(as_utc(row.capture_start_time))  # type: ignore[arg-type]
    if row.stop_reason:
        status["stopReason"] = row.stop_reason
    if row.error_message:
        status["packetWatchErrorMessage"] = row.error_message
    if (parameters.get("storageLocation") or {}).get("storageId"):
        status["packetWatchStored"] = bool(row.storage_path)
    summary = without_nulls(json.loads(row.summary)) if row.summary else None
    if progress is not None and row.status == PcStatus.RUNNING.value:
        summary = {"packets": progress["packets"], "bytes": progress["bytes"]}
    if summary is not None:
        status["packetWatchSummary"] = summary
    return status


def _live_progress(conn, rows: list[Row]) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    """Running captures' packets and bytes so far, by run, from their agents' last heartbeats."""
    targets = {row.target_key for row in rows if row.status == PcStatus.RUNNING.value}
    progress: dict[str, dict[str, int]] = {}
    for chunk in [sorted(targets)[i:i + 500] for i in range(0, len(targets), 500)]:
        for (report,) in conn.execute(select(agents.c.progress).where(agents.c.vm_key.in_(chunk))):
            progress.update(json.loads(report) if report else {})
    return progress
