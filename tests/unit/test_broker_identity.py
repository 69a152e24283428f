"""Each agent's broker permissions reach its own queue and nothing of another VM's; the sender
of a message is the user the broker checked; an agent uploads only its own capture files."""

import re
from pathlib import Path

from cli.agent_enroll import with_user
from shared.broker import CONTROL_QUEUE, NOTIFY_QUEUE, agent_queue_name
from shared.broker_identity import AGENTS_EXCHANGE, EVENTS_EXCHANGE, REPORTS_EXCHANGE, AgentPermissions, \
    verified_sender
from shared.resource_ids import VirtualMachineId
from workers.agent.uploads import is_capture_file

A = VirtualMachineId("00000000-0000-0000-0000-000000000001", "rg", "web-1")
B = VirtualMachineId("00000000-0000-0000-0000-000000000001", "rg", "web-10")
TWIN = VirtualMachineId("00000000-0000-0000-0000-000000000001", "other-rg", "web-1")  # same computer name


def _may(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None  # as RabbitMQ matches a permission's pattern


def test_an_agent_reaches_its_own_queue_and_no_other_vms():
    mine = AgentPermissions.of(A)
    own = agent_queue_name(A)
    assert mine.user == own
    for pattern in (mine.configure, mine.write, mine.read):
        assert _may(pattern, own)
        for other in (agent_queue_name(B), agent_queue_name(TWIN), own + "x", "x" + own, CONTROL_QUEUE,
                      NOTIFY_QUEUE, "packetwatch.submissions"):
            assert not _may(pattern, other), (pattern, other)


def test_an_agent_publishes_only_through_the_reports_and_agents_exchanges_and_never_the_default_one():
    mine = AgentPermissions.of(A)
    assert _may(mine.write, REPORTS_EXCHANGE) and _may(mine.write, AGENTS_EXCHANGE)
    assert not _may(mine.write, "amq.default"), "the default exchange reaches every queue by name"
    assert not _may(mine.configure, REPORTS_EXCHANGE) and not _may(mine.configure, AGENTS_EXCHANGE), \
        "it may not delete or redeclare them"
    assert not any(_may(pattern, "celery.pidbox") for pattern in (mine.configure, mine.write, mine.read)), \
        "no broadcast commands to every worker"
    assert _may(mine.write, EVENTS_EXCHANGE)


def test_on_the_agents_exchange_an_agent_may_only_use_its_own_routing_key():
    mine = AgentPermissions.of(A)
    assert _may(mine.topic_key, agent_queue_name(A))
    for key in (agent_queue_name(B), agent_queue_name(TWIN), "#", "packetwatch.agent.*.*", "packetwatch.agent.#"):
        assert not _may(mine.topic_key, key), key
    permissions, topic = mine.definitions("/")
    assert permissions["user"] == topic["user"] == mine.user and topic["exchange"] == AGENTS_EXCHANGE


def test_the_sender_is_the_user_the_broker_checked_and_an_origin_counts_only_from_ourselves():
    assert verified_sender("agent-a", None, "control") == "agent-a"
    assert verified_sender("agent-a", "agent-b", "control") == "agent-a", "an agent cannot claim an origin"
    assert verified_sender("control", "agent-b", "control") == "agent-b", "a retry keeps its verified origin"
    assert verified_sender("control", "", "control") == "control"
    assert verified_sender(None, "agent-b", "control") is None
    assert verified_sender("", None, "control") is None


def test_an_enrolled_agent_url_keeps_the_brokers_addresses_and_virtual_host():
    url = with_user("amqps://admin:secret@rabbit-1:5671/pw;amqps://admin:secret@rabbit-2:5671/pw",
                    "packetwatch.agent.web-1.abc", "p/w@:")
    assert url == ("amqps://packetwatch.agent.web-1.abc:p%2Fw%40%3A@rabbit-1:5671/pw;"
                   "amqps://packetwatch.agent.web-1.abc:p%2Fw%40%3A@rabbit-2:5671/pw")
    assert with_user("amqp://rabbit//", "u", "p") == "amqp://u:p@rabbit//"


def test_an_agent_uploads_only_capture_files_of_its_own(tmp_path):
    captures = tmp_path / "captures"
    (captures / "e2e").mkdir(parents=True)
    (captures / ".agent" / "q" / "journal").mkdir(parents=True)
    capture = captures / "e2e" / "one.cap"
    capture.write_bytes(b"pcap")
    journal = captures / ".agent" / "q" / "journal" / "x.started"
    journal.write_text("{}")
    secret = tmp_path / "secret"
    secret.write_text("not evidence")
    (captures / "e2e" / "link.cap").symlink_to(secret)
    assert is_capture_file(capture, captures)
    assert not is_capture_file(secret, captures)
    assert not is_capture_file(captures / "e2e" / ".." / ".." / "secret", captures)
    assert not is_capture_file(captures / "e2e" / "link.cap", captures), "a link out of the capture folder"
    assert not is_capture_file(journal, captures), "the agent's own state is not a capture"
    assert not is_capture_file(captures / "e2e", captures), "a folder"
    assert not is_capture_file(Path("/etc/passwd"), captures)


def test_an_upload_request_is_carried_out_only_for_a_file_of_that_run(tmp_path):
    from shared.messages import UploadRequest, UploadTarget
    from workers.agent.journal import Journal
    from workers.agent.uploads import store_file

    captures = tmp_path / "captures"
    (captures / "ring").mkdir(parents=True)
    journal = Journal(captures / ".agent" / "q" / "journal")
    one, ring3 = captures / "one.cap", captures / "ring" / "r_00003.cap"
    for path in (one, ring3, captures / "ring" / "r_00001.cap"):
        path.write_bytes(b"pcap")
    journal.begin("run-1", "capture-1")
    journal.set_path("run-1", "capture-1", one)
    journal.begin("run-2", "capture-2")
    journal.set_path("run-2", "capture-2", ring3, 3)
    assert journal.entry("run-2").file(1) == str(captures / "ring" / "r_00001.cap")
    assert journal.entry("run-2").file(None) is None and journal.entry("run-1").file(2) is None

    def request(run: str, capture: str, path: Path, index: int | None = None) -> UploadRequest:
        return UploadRequest(capture_id=capture, run_id=run, local_path=str(path), keep_local=True, file_index=index,
                             upload=UploadTarget(url="http://127.0.0.1:1/nowhere/x.cap?sig=x", retry_seconds=0))

    for forged in (request("run-1", "capture-1", captures / "ring" / "r_00001.cap"),  # another run's file
                   request("run-1", "capture-2", one),  # another capture's run
                   request("run-2", "capture-2", one, 1),  # not the ring's file of that index
                   request("run-9", "capture-9", one),  # a run this agent never had
                   request("run-1", "capture-1", Path("/etc/passwd"))):
        result = store_file(forged, captures, journal)
        assert result.storage_path is None and "not a file of run" in result.error_message, forged
    assert one.exists() and ring3.exists()
    from workers.agent.uploads import GONE
    gone = request("run-2", "capture-2", captures / "ring" / "r_00002.cap", 2)  # its file, removed by the ring
    assert store_file(gone, captures, journal).error_message == GONE, "a file of that run is looked for"
