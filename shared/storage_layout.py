"""Where capture files live: Azure's blob path (DESIGN.md §6) and the agent's local paths."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from datetime import datetime, timezone
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from shared.errors import InvalidField
from shared.resource_ids import CaptureId, VirtualMachineId

BLOB_CONTAINER = "network-watcher-logs"
CAPTURE_SUFFIX = ".cap"


_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


def container_of(storage_path: str | None, field: str = "properties.storageLocation.storagePath") -> str:
    """The container a capture is stored in: the one `storagePath` names (az: "URI of an existing
    storage container"; ARM's examples give a blob's URI in it), else Network Watcher's own. The
    container is the URI's first path segment, or its second on a path-style URI (an IP or
    localhost host, e.g. Azurite's http://127.0.0.1:10000/ACCOUNT/CONTAINER)."""
    if not storage_path:
        return BLOB_CONTAINER
    url = urlparse(storage_path)
    segments = [part for part in unquote(url.path).split("/") if part]
    path_style = url.hostname is not None and (url.hostname == "localhost" or _is_ip(url.hostname))
    name = segments[1 if path_style else 0] if len(segments) > (1 if path_style else 0) else ""
    if url.scheme not in ("http", "https") or not url.netloc or not _CONTAINER.fullmatch(name):
        raise InvalidField(field, storage_path, "must be the URI of a storage container, e.g. "
                           "https://ACCOUNT.blob.core.windows.net/CONTAINER (3-63 lowercase letters, digits and "
                           "single hyphens)")
    return name


def stored_blob_name(stored_at: str, container: str) -> str:
    """The blob's name within its container, from the URL it was stored at."""
    return unquote(urlparse(stored_at).path).split(f"/{container}/", 1)[1]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def capture_file_name(created: datetime) -> str:
    """`packetcapture_{HH}_{MM}_{SS}_{mmm}.cap` in UTC, as Network Watcher names its files."""
    t = created.astimezone(timezone.utc)
    return f"packetcapture_{t:%H}_{t:%M}_{t:%S}_{t.microsecond // 1000:03d}{CAPTURE_SUFFIX}"


def blob_path(vm: VirtualMachineId, created: datetime) -> str:
    """Network Watcher's layout: the VM's resource ID, then the date. A scale set instance's
    file goes under its own resource ID (…/virtualmachinescalesets/S/virtualmachines/ID/…):
    Azure does not document a scale set layout, so PacketWatch keeps the VM one."""
    t = created.astimezone(timezone.utc)
    return f"{vm.key.lstrip('/')}/{t:%Y}/{t:%m}/{t:%d}/" + capture_file_name(t)


def spool_relative_path(capture: CaptureId, created: datetime) -> str:
    """Where a capture with no filePath is written under the capture root before upload."""
    return "/".join([".spool", capture.subscription, capture.resource_group, capture.network_watcher,
                     capture.name, capture_file_name(created)]).lower()


def relative_capture_path(file_path: str, capture_root: str, field: str = "storageLocation.filePath") -> str:
    """Confine a user's filePath to the capture root; returns the path relative to it."""
    if not isinstance(file_path, str) or "\x00" in file_path or "\\" in file_path:
        raise InvalidField(field, file_path, f"must be an absolute path under {capture_root}")
    if not file_path.startswith("/"):
        raise InvalidField(field, file_path, f"must be an absolute path under {capture_root}")
    if ".." in PurePosixPath(file_path).parts:
        raise InvalidField(field, file_path, "must not contain '..'")
    if not file_path.endswith(CAPTURE_SUFFIX) or file_path.endswith("/" + CAPTURE_SUFFIX):
        raise InvalidField(field, file_path, f"must name a file ending in {CAPTURE_SUFFIX}")
    normal = posixpath.normpath(file_path)
    root = posixpath.normpath(capture_root)
    if posixpath.commonpath([normal, root]) != root or normal == root:
        raise InvalidField(field, file_path, f"must be under the capture root {capture_root}")
    relative = posixpath.relpath(normal, root)
    if relative.split("/")[0] == ".spool":
        raise InvalidField(field, file_path, "must not be inside the agent's spool folder")
    return relative


# Where an agent uploads a capture's file: a staging blob beside the capture's own, which only
# the control side copies to it (shared/sealed_uploads.py).
UPLOADS_PREFIX = "packetwatch-uploads/"


def staging_name(blob_name: str) -> str:
    return UPLOADS_PREFIX + blob_name
