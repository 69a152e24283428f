"""Creating, stopping and explaining captures: the one path shared by the ARM routes and
the alert webhook.

Recording and publishing cannot part: a capture is recorded together with its request in
the outbox (one transaction), then the request is published and, once the broker confirms
it, taken out of the outbox. If this process dies in between, a client that re-sends gets
the request sent then, and otherwise the control worker's relay sends it. An ARM create
waits for the broker's confirm: if the broker refuses a new capture, the record goes and
the caller gets 503, nothing half-accepted. An alert's capture is answered once recorded
and published in the background (`OutboxSender`, which publishes for both): an alert storm
never waits on the broker, and a broker that is down delays the request (the relay sends
it) but loses nothing.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial

from azure.core.exceptions import AzureError
from celery import Celery

from functions.dispatch import capture_message, stop_message
from shared.lifecycle_events import CREATED, event_message, publish_event
from functions.outbox_sender import OutboxSender
from functions.metrics import CAPTURES_CREATED
from shared.arm import (
    CaptureSummary, PacketCaptureParameters, PacketCaptureQueryStatusResult, PacketCaptureResult, PcStatus,
    format_arm_time,
)

from shared.capture_files import files_of
from shared.capture_spec import CaptureSpec, build_spec, parse_body
from shared.errors import AgentNotFound, BrokerUnavailable, InvalidField
from shared.failpoints import failpoint
from shared.messages import Outgoing, UploadTarget
from shared.registry import AlertClaim, CaptureRecord, Created, InstancePart, Registry
from shared.registry_records import plans_a_blob
from shared.resource_ids import CaptureId, ScaleSetId, VirtualMachineId
from shared.scale_sets import in_scope, scale_set_status
from shared.storage_accounts import SAS_MARGIN, StorageAccount, StorageAccounts
from shared.storage_layout import blob_path, container_of

ACTIVE = (PcStatus.NOT_STARTED, PcStatus.RUNNING)
log = logging.getLogger("packetwatch.api")




class CaptureService:
    def __init__(self, registry: Registry, broker: Celery, capture_root: str,
                 start_deadline: timedelta = timedelta(minutes=5), require_known_agent: bool = False,
                 accounts: StorageAccounts | None = None, upload_retry: timedelta = timedelta(minutes=15)) -> None:
        self.registry = registry
        self.capture_root = capture_root
        self.start_deadline = start_deadline
        self.require_known_agent = require_known_agent
        self.accounts = accounts or StorageAccounts()
        self.upload_retry = upload_retry
        self.containers_made: set[tuple[int, str]] = set()
        self.sender = OutboxSender(broker, registry.messages_sent)
        self.broker = broker
        # The created events (shared/lifecycle_events.py) of captures published in the background.
        self.events = ThreadPoolExecutor(1, thread_name_prefix="lifecycle-events")

    def upload_target(self, spec: CaptureSpec, parameters: PacketCaptureParameters,
                      created: datetime) -> UploadTarget | None:
        """For a capture stored in an account: a SAS for exactly its blob, create and write
        only, valid until the capture can have started, run and exhausted its upload retries."""
        storage_id = parameters.storage_location.storage_id
        if not storage_id:
            return None
        account = self.accounts.lookup(storage_id, "properties.storageLocation.storageId")
        container = container_of(parameters.storage_location.storage_path)
        self._ensure_container(account, container)
        if parameters.continuous:
            return None  # each file gets its own SAS from the control worker as it closes
        retry = timedelta(seconds=account.retry_seconds) if account.retry_seconds else self.upload_retry
        expiry = created + self.start_deadline + timedelta(seconds=parameters.seconds_limit) + retry + SAS_MARGIN
        return account.upload_target(blob_path(spec.vm, created), expiry, retry.total_seconds(), container)

    def result(self, record: CaptureRecord) -> PacketCaptureResult:
        """The capture as ARM shows it: a one-file capture to a storage account has its blob's
        URL in storagePath from create on, as Azure does (packetWatchStored says once it is there)."""
        if record.storage_path:
            return record.to_result()
        return record.to_result(self.planned_path(record.parameters, record.created_at))

    def planned_path(self, parameters: PacketCaptureParameters, created_at: datetime) -> str | None:
        """Where a one-file capture to a storage account will be stored; None for other
        captures, or an account no longer configured."""
        if not plans_a_blob(parameters):
            return None
        try:
            account = self.accounts.lookup(parameters.storage_location.storage_id)  # type: ignore[arg-type]
            container = container_of(parameters.storage_location.storage_path)
        except InvalidField:
            return None
        return account.blob_url(blob_path(VirtualMachineId.parse(parameters.target), created_at), container)

    def _ensure_container(self, account: StorageAccount, container: str) -> None:
        """Once per account, container and process; if storage is away now, the upload waits for it."""
        if (id(account), container) in self.containers_made:
            return
        try:
            account.ensure_container(container)
            self.containers_made.add((id(account), container))
        except AzureError as exc:
            log.warning("cannot make the captures' container in a storage account yet: %s", str(exc).splitlines()[0])

    def check(self, capture: CaptureId, parameters: PacketCaptureParameters,
              now: datetime | None = None) -> CaptureSpec:
        """The capture as its agent will run it, or InvalidField naming every value a create refuses."""
        return build_spec(capture, parameters, self.capture_root, now or datetime.now(timezone.utc))

    def put(self, capture: CaptureId, body: object, source: str) -> Created:
        """A PUT of `body` (ARM's PacketCapture) for `capture`, from either front door (the ARM
        route, the queue intake): one parse with every value checked, then create."""
        resource = parse_body(body, partial(self.check, capture))
        return self.create(capture, resource.properties, source=source)

    def create(self, capture: CaptureId, parameters: PacketCaptureParameters,
               claim: AlertClaim | None = None, source: str = "api", await_confirm: bool = True) -> Created:
        """Record and queue a capture. Raises InvalidField, AgentNotFound, CaptureConflict or
        (awaiting the broker's confirm) BrokerUnavailable; `holder` is set instead when the
        alert claim is another capture's. Without `await_confirm`, the request is published in
        the background once recorded."""
        now = datetime.now(timezone.utc)
        spec = self.check(capture, parameters, now)
        if isinstance(spec.target, ScaleSetId):
            return self._record_and_send(capture, parameters, spec.target.key, uuid.uuid4().hex, None, claim, source,
                                         now, await_confirm, self._instance_parts(spec, spec.target, parameters, now))
        if self.require_known_agent and self.registry.agent(spec.target.key) is None:
            raise AgentNotFound(f"no PacketWatch agent has ever reported for {spec.target.arm_id}; install one "
                                "(packetwatch agent install) or check the VM ID", "properties.target")
        run_id = uuid.uuid4().hex
        upload = self.upload_target(spec, parameters, now)
        request = capture_message(spec, run_id, parameters, now, now + self.start_deadline, upload)
        return self._record_and_send(capture, parameters, spec.target.key, run_id, request, claim, source, now,
                                     await_confirm)

    def _instance_parts(self, spec: CaptureSpec, scale_set: ScaleSetId, parameters: PacketCaptureParameters,
                        now: datetime) -> list[InstancePart]:
        """One capture request per instance in scope, each for its own agent's queue."""
        instances = in_scope(scale_set, [VirtualMachineId.parse(agent.vm_id, "agent")
                                         for agent in self.registry.scale_set_agents(scale_set)], parameters.scope)
        parts = []
        for instance in instances:
            part = spec.for_instance(instance)
            part_parameters = parameters.model_copy(update={"target": instance.arm_id, "target_type": None,
                                                            "scope": None})
            run_id = uuid.uuid4().hex
            upload = self.upload_target(part, part_parameters, now)
            request = capture_message(part, run_id, part_parameters, now, now + self.start_deadline, upload)
            parts.append(InstancePart(part.capture, part_parameters, instance.key, run_id, request))
        return parts

    def _record_and_send(self, capture: CaptureId, parameters: PacketCaptureParameters, target_key: str,
                         run_id: str, request: Outgoing | None, claim: AlertClaim | None, source: str,
                         now: datetime, await_confirm: bool, instances: list[InstancePart] | None = None) -> Created:
        created = self.registry.create(capture, parameters, target_key, now, run_id, request, claim, instances,
                                       self.planned_path(parameters, now))
        failpoint("capture.recorded")
        if await_confirm:
            self._confirm_or_undo(capture, created, claim)
        else:
            self.sender.submit(created.pending)
        if created.record is not None and (created.created or created.pending):  # new, or never confirmed
            announce = partial(self._announce_created, created.record)
            if await_confirm:  # before the answer (and, in practice, before the control worker's running)
                announce()
            else:
                self.events.submit(announce)
        if created.created:
            CAPTURES_CREATED.labels(source).inc()
            scope = f" ({len(instances)} instances)" if instances else ""
            log.info("capture %s created by %s for %s%s, run %s", capture.arm_id, source, parameters.target, scope,
                     run_id, extra={"capture_id": capture.arm_id, "run_id": run_id, "source": source})
        return created

    def _confirm_or_undo(self, capture: CaptureId, created: Created, claim: AlertClaim | None) -> None:
        """Wait for the broker to confirm the requests; when it does not, a new capture (and its
        alert claim) goes and BrokerUnavailable is raised, unless it was partly sent."""
        try:
            self.sender.send(created.pending)
        except BrokerUnavailable as exc:
            if not created.created or not self._partly_sent(capture, created, exc.confirmed):
                if created.created:
                    self.registry.delete(capture)
                    if claim is not None:
                        self.registry.release_alert_capture(claim.vm_key, claim.rule_key, capture)
                raise
        failpoint("capture.confirmed")

    @staticmethod
    def _partly_sent(capture: CaptureId, created: Created, confirmed: int) -> bool:
        """A scale set capture some of whose instances already got their request stays (the
        control worker's relay sends the rest once the broker is back): nothing is lost, and
        no instance runs a capture that no longer exists."""
        if confirmed:
            log.warning("capture %s: the broker failed after %d of %d instance requests; the rest are sent "
                        "when it is back", capture.arm_id, confirmed, len(created.pending))
        return confirmed > 0

    def send_unsent(self, capture: CaptureId, await_confirm: bool = True) -> None:
        """Send what an earlier request recorded for this capture but never got confirmed."""
        unsent = self.registry.take_unsent(capture)
        if await_confirm:
            self.sender.send(unsent)
        else:
            self.sender.submit(unsent)

    def _announce_created(self, record: CaptureRecord) -> None:
        try:
            publish_event(self.broker, event_message(CREATED, record))
        except Exception as exc:  # the capture stands; only its created event is missing
            log.warning("capture %s: its created event could not be published: %s", record.capture.arm_id, exc,
                        extra={"capture_id": record.capture.arm_id, "run_id": record.run_id})

    def close(self) -> None:
        """Finish the background publishes under way (the relay sends what is left)."""
        self.sender.close()
        self.events.shutdown(wait=True)

    def stop(self, record: CaptureRecord) -> None:
        """Ask the agent to stop an active capture, once; a stopped one is left as it is. The
        stop is recorded before it is sent, so it is never lost."""
        if record.status is PcStatus.UNKNOWN:  # a scale set capture: stop every instance's part
            for part in self.registry.instances(record.capture):
                self.stop(part)
            return
        if record.status not in ACTIVE:
            return
        now = datetime.now(timezone.utc)
        message = stop_message(record.capture, record.run_id, VirtualMachineId.parse(record.parameters.target), now)
        self.sender.send(self.registry.request_stop(record, message, now))
        log.info("capture %s stop requested, run %s", record.capture.arm_id, record.run_id,
                 extra={"capture_id": record.capture.arm_id, "run_id": record.run_id})

    def _live(self, record: CaptureRecord) -> CaptureRecord:
        """A running capture with the packets and bytes its agent's last heartbeat reported."""
        if record.status is not PcStatus.RUNNING:
            return record
        agent = self.registry.agent(record.parameters.target)
        progress = agent.progress.get(record.run_id) if agent is not None else None
        if progress is None:
            return record
        return replace(record, summary=CaptureSummary(packets=progress["packets"], bytes=progress["bytes"]))

    def query_status(self, record: CaptureRecord) -> PacketCaptureQueryStatusResult:
        """ARM's status; while it runs, what its agent last said it wrote; for a capture no
        agent has started, also what it waits for and until when."""
        if record.status is PcStatus.UNKNOWN:
            parts = [self._live(part) for part in self.registry.instances(record.capture)]
            files = {part.capture.key: files_of(self.registry.engine, part.capture, part.run_id) for part in parts} \
                if record.parameters.continuous else None
            return scale_set_status(record, parts, files)
        status = self._live(record).to_status()
        if record.parameters.continuous:
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
