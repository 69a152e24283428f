"""Creating, stopping and explaining captures: the one path shared by the ARM routes and
the alert webhook.

Recording and publishing cannot part: a capture is recorded together with its request in
the outbox (one transaction), then the request is published and, once the broker confirms
it, taken out of the outbox. If this process dies in between, a client that re-sends gets
the request sent then, and otherwise the control worker's relay sends it. If the broker
refuses a new capture, the record goes and the caller gets 503: nothing half-accepted.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

from azure.core.exceptions import AzureError

from functions.dispatch import Dispatcher, capture_message, stop_message
from functions.metrics import CAPTURES_CREATED
from shared.arm import PacketCaptureParameters, PacketCaptureQueryStatusResult, PcStatus, format_arm_time

from shared.capture_files import files_of
from shared.capture_spec import CaptureSpec, build_spec
from shared.errors import AgentNotFound, BrokerUnavailable
from shared.failpoints import failpoint
from shared.outbox import PendingMessage
from shared.messages import UploadTarget
from shared.registry import AlertClaim, CaptureRecord, Created, Registry
from shared.resource_ids import CaptureId, VirtualMachineId
from shared.storage_accounts import SAS_MARGIN, StorageAccount, StorageAccounts
from shared.storage_layout import blob_path

ACTIVE = (PcStatus.NOT_STARTED, PcStatus.RUNNING)
log = logging.getLogger("packetwatch.api")




class CaptureService:
    def __init__(self, registry: Registry, dispatcher: Dispatcher, capture_root: str,
                 start_deadline: timedelta = timedelta(minutes=5), require_known_agent: bool = False,
                 accounts: StorageAccounts | None = None, upload_retry: timedelta = timedelta(minutes=15)) -> None:
        self.registry = registry
        self.dispatcher = dispatcher
        self.capture_root = capture_root
        self.start_deadline = start_deadline
        self.require_known_agent = require_known_agent
        self.accounts = accounts or StorageAccounts()
        self.upload_retry = upload_retry
        self.containers_made: set[int] = set()

    def upload_target(self, spec: CaptureSpec, parameters: PacketCaptureParameters,
                      created: datetime) -> UploadTarget | None:
        """For a capture stored in an account: a SAS for exactly its blob, create and write
        only, valid until the capture can have started, run and exhausted its upload retries."""
        storage_id = parameters.storage_location.storage_id
        if not storage_id:
            return None
        account = self.accounts.lookup(storage_id, "properties.storageLocation.storageId")
        self._ensure_container(account)
        if parameters.continuous_capture is not None:
            return None  # each file gets its own SAS from the control worker as it closes
        retry = timedelta(seconds=account.retry_seconds) if account.retry_seconds else self.upload_retry
        expiry = created + self.start_deadline + timedelta(seconds=parameters.seconds_limit) + retry + SAS_MARGIN
        return account.upload_target(blob_path(spec.target, created), expiry, retry.total_seconds())

    def _ensure_container(self, account: StorageAccount) -> None:
        """Once per account and process; if storage is away now, the upload waits for it."""
        if id(account) in self.containers_made:
            return
        try:
            account.ensure_container()
            self.containers_made.add(id(account))
        except AzureError as exc:
            log.warning("cannot make the captures' container in a storage account yet: %s", str(exc).splitlines()[0])

    def create(self, capture: CaptureId, parameters: PacketCaptureParameters,
               claim: AlertClaim | None = None, source: str = "api") -> Created:
        """Record and queue a capture. Raises InvalidField, AgentNotFound, CaptureConflict or
        BrokerUnavailable; `holder` is set instead when the alert claim is another capture's."""
        now = datetime.now(timezone.utc)
        spec = build_spec(capture, parameters, self.capture_root, now)
        if self.require_known_agent and self.registry.agent(spec.target.key) is None:
            raise AgentNotFound(f"no PacketWatch agent has ever reported for {spec.target.arm_id}; install one "
                                "(packetwatch agent install) or check the VM ID", "properties.target")
        run_id = uuid.uuid4().hex
        upload = self.upload_target(spec, parameters, now)
        request = capture_message(spec, run_id, parameters, now, now + self.start_deadline, upload)
        created = self.registry.create(capture, parameters, spec.target.key, now, run_id, request, claim)
        failpoint("capture.recorded")
        try:
            self.send(created.pending)
        except BrokerUnavailable:
            if created.created:
                self.registry.delete(capture)
                if claim is not None:
                    self.registry.release_alert_capture(claim.vm_key, claim.rule_key, capture)
            raise
        failpoint("capture.confirmed")
        if created.created:
            CAPTURES_CREATED.labels(source).inc()
            log.info("capture %s created by %s for %s, run %s", capture.arm_id, source, spec.target.arm_id, run_id,
                     extra={"capture_id": capture.arm_id, "run_id": run_id, "source": source})
        return created

    def send(self, pending: list[PendingMessage]) -> None:
        """Publish recorded messages, each removed from the outbox once the broker confirms it."""
        for message in pending:
            self.dispatcher.send(message.message)
            failpoint("capture.published")
            self.registry.message_sent(message)

    def send_unsent(self, capture: CaptureId) -> None:
        """Send what an earlier request recorded for this capture but never got confirmed."""
        self.send(self.registry.take_unsent(capture))

    def stop(self, record: CaptureRecord) -> None:
        """Ask the agent to stop an active capture, once; a stopped one is left as it is. The
        stop is recorded before it is sent, so it is never lost."""
        if record.status not in ACTIVE:
            return
        now = datetime.now(timezone.utc)
        message = stop_message(record.capture, record.run_id, VirtualMachineId.parse(record.parameters.target), now)
        self.send(self.registry.request_stop(record, message, now))
        log.info("capture %s stop requested, run %s", record.capture.arm_id, record.run_id,
                 extra={"capture_id": record.capture.arm_id, "run_id": record.run_id})

    def query_status(self, record: CaptureRecord) -> PacketCaptureQueryStatusResult:
        """ARM's status; for a capture no agent has started, also what it waits for and until when."""
        status = record.to_status()
        if record.parameters.continuous_capture is not None:
            status.files = files_of(self.registry.engine, record.capture, record.run_id)
        if record.status is not PcStatus.NOT_STARTED:
            return status
        vm = record.parameters.target
        deadline = record.created_at + self.start_deadline
        agent = self.registry.agent(vm)
        if agent is None:
            seen = f"no agent has ever reported for {vm}"
        else:
            ago = (datetime.now(timezone.utc) - agent.last_seen).total_seconds()
            seen = f"the agent of {vm} was last seen at {format_arm_time(agent.last_seen)} ({ago:.0f} s ago)"
        detail = (f"waiting for an agent to start it: {seen}; if none starts it by {format_arm_time(deadline)} "
                  "it ends in Error/AgentStopped")
        return status.model_copy(update={"status_detail": detail, "start_deadline": deadline,
                                         "agent_last_seen": agent.last_seen if agent else None})
