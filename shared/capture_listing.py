"""Listing a watcher's captures at fleet size.

One SELECT, each item put together by the database from the properties JSON the registry
stored with the capture as GET shows them (`listed`: with the blob URL planned at create,
rewritten when the file is stored), its name, ID and etag: no JSON is parsed or built per
item in Python. A row with no `listed` (an earlier version's, or a blob URL not known when it
was recorded) is built from its parameters through the same model as GET. Pages are keyset
pages in list order (creation time, then key): `$top` items after the opaque `$skipToken`,
stable while captures are added or deleted. `$expand=status` puts each capture's status
beside it, so a console needs one request per refresh instead of one per capture.
"""

from __future__ import annotations

from sqlalchemy import Connection
import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.engine import Engine, Row

from shared.arm import PacketCaptureParameters, PcStatus, format_arm_time
from shared.errors import InvalidField
from shared.registry_records import as_utc, result_properties
from shared.registry_schema import agents, captures

MAX_TOP = 1000
# Each item put together by the database from its stored columns (names and IDs are validated
# ARM names, with no character JSON escapes; an etag's quotes are escaped). Null for a row with
# no stored properties (an earlier version's, or a blob not planned when it was recorded).
ITEM = (literal('{"name":"') + captures.c.name + '","id":"' + captures.c.arm_id + '","etag":"'
        + func.replace(captures.c.etag, '"', '\\"') + '","properties":' + captures.c.listed + "}").label("item")
LISTED = (captures.c.key, ITEM)
PAGED = (captures.c.created_at,)  # where the next page starts
STATUS = (captures.c.arm_id, captures.c.parameters, captures.c.storage_path, captures.c.status,
          captures.c.capture_start_time, captures.c.stop_reason, captures.c.errors, captures.c.error_message,
          captures.c.summary, captures.c.run_id, captures.c.target_key)


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

    @property
    def everything(self) -> bool:
        """The whole list, each capture as GET shows it, nothing beside it."""
        return self.top is None and self.after is None and not self.expand_status


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
              planned_path: Callable[[PacketCaptureParameters, datetime], str | None],
              full_status: Callable[[str], dict[str, Any]]) -> Page:
    """A watcher's captures as ARM lists them. `planned_path` gives a capture's blob URL before
    its upload; `full_status` queryStatus's answer for a capture made of parts (a scale set's
    instances, a continuous capture's files)."""
    paged = request.top is not None
    query = select(*LISTED, *(PAGED if paged else ()), *(STATUS if request.expand_status else ())) \
        .where(captures.c.watcher_key == watcher_path.lower()).order_by(captures.c.created_at, captures.c.key)
    if request.after is not None:
        when, key = request.after
        query = query.where(or_(captures.c.created_at > when,
                                and_(captures.c.created_at == when, captures.c.key > key)))
    if paged:
        query = query.limit(request.top + 1)  # type: ignore[operator]
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        token = None
        if paged and len(rows) > request.top:  # type: ignore[operator]
            rows = rows[:request.top]
            last = rows[-1]
            token = base64.urlsafe_b64encode(json.dumps([as_utc(last.created_at).isoformat(),  # type: ignore[union-attr]
                                                         last.key]).encode()).decode().rstrip("=")
        live = _live_progress(conn, rows) if request.expand_status else {}
        built = _built(conn, [row.key for row in rows if row.item is None], planned_path)
    items = []
    for row in rows:
        item = row.item or built[row.key]
        if request.expand_status:
            parameters = json.loads(row.parameters)
            if row.status == PcStatus.UNKNOWN.value or parameters.get("continuousCapture") is not None:
                status = {key: value for key, value in full_status(row.arm_id).items() if key not in ("name", "id")}
            else:
                status = _status(row, parameters, live.get(row.run_id))
            item = item[:-1] + ',"packetWatchStatus":' + json.dumps(status, separators=(",", ":"),
                                                                    ensure_ascii=False) + "}"
        items.append(item)
    return Page(items, token)


def stream_list(engine: Engine, watcher_path: str,
                planned_path: Callable[[PacketCaptureParameters, datetime], str | None],
                chunk: int = 2000) -> Iterator[bytes]:
    """The whole unpaged list's answer (`{"value":[…]}`) in pieces, `chunk` captures each, read
    off the database as they are sent (a server-side cursor on PostgreSQL), so the database,
    the server and the client work at once instead of one after the other."""
    yield b'{"value":['
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=chunk).execute(
            select(*LISTED).where(captures.c.watcher_key == watcher_path.lower())
            .order_by(captures.c.created_at, captures.c.key))
        separator = ""
        for part in rows.partitions():
            built = _built(conn, [row.key for row in part if row.item is None], planned_path)
            yield (separator + ",".join(row.item or built[row.key] for row in part)).encode()
            separator = ","
    yield b"]}"


def _built(conn: Connection, keys: list[str],
           planned_path: Callable[[PacketCaptureParameters, datetime], str | None]) -> dict[str, str]:
    """These captures' items built from their parameters, as GET builds them."""
    built = {}
    for chunk in [keys[i:i + 500] for i in range(0, len(keys), 500)]:
        for row in conn.execute(select(captures).where(captures.c.key.in_(chunk))):
            parameters = PacketCaptureParameters.model_validate_json(row.parameters)
            path = row.storage_path or planned_path(parameters, as_utc(row.created_at))  # type: ignore[arg-type]
            properties = result_properties(parameters, path).model_dump_json(by_alias=True, exclude_none=True)
            built[row.key] = (f'{{"name":{_quoted(row.name)},"id":{_quoted(row.arm_id)},'
                              f'"etag":{_quoted(row.etag)},"properties":{properties}}}')
    return built


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


def _live_progress(conn: Connection, rows: Sequence[Row]) -> dict[str, dict[str, int]]:
    """Running captures' packets and bytes so far, by run, from their agents' last heartbeats."""
    targets = {row.target_key for row in rows if row.status == PcStatus.RUNNING.value}
    progress: dict[str, dict[str, int]] = {}
    for chunk in [sorted(targets)[i:i + 500] for i in range(0, len(targets), 500)]:
        for (report,) in conn.execute(select(agents.c.progress).where(agents.c.vm_key.in_(chunk))):
            progress.update(json.loads(report) if report else {})
    return progress
