"""Who sent a broker message, as RabbitMQ vouches for it, and what each VM's agent may do.

Every VM's agent logs in as a broker user of its own, named after its queue (`agent_user`),
issued at enrollment (cli/agent_enroll.py) with permissions that reach its own queue and
nothing else of any other VM (`AgentPermissions`):
- it consumes only its own queue, and declares and binds only that;
- it publishes reports only to the reports exchange (bound to the control queue), never to
  the default exchange (which reaches every queue by name), and messages to itself only on
  the agents' topic exchange under its own routing key (topic permissions confine the key);
- Celery's task events (the `celeryev` exchange) are the one other thing it may publish to,
  for Flower and `celery events`: monitoring, never evidence.

Every PacketWatch process stamps what it publishes with its own broker user in `user_id`,
which RabbitMQ refuses unless it is the publishing connection's user. So a report's
`user_id` names the agent that sent it, and the control worker applies a report only when
that agent owns the capture's VM (`verified_sender`). A report the control worker publishes
again for a later try carries its verified origin in ORIGIN_HEADER, believed only on a
message whose `user_id` is the control worker's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from kombu import Connection

from shared.broker_names import CONTROL_QUEUE, agent_queue_name
from shared.resource_ids import VirtualMachineId

REPORTS_EXCHANGE = "packetwatch.reports"  # direct, bound to CONTROL_QUEUE: the agents' one way in
AGENTS_EXCHANGE = "packetwatch.agents"  # topic: an agent's message to its own queue (an upload, say)
EVENTS_EXCHANGE = "celeryev"  # Celery's task events
ORIGIN_HEADER = "packetwatch_origin"


def agent_user(vm: VirtualMachineId) -> str:
    """The broker user of `vm`'s agent: its queue's name (one per VM or scale set instance)."""
    return agent_queue_name(vm)


@lru_cache(maxsize=64)
def user_of(broker_url: str) -> str:
    """The broker user a process logs in as (what RabbitMQ accepts as its `user_id`)."""
    return str(Connection(broker_url).info()["userid"])


def verified_sender(user_id: str | None, origin: str | None, own_user: str) -> str | None:
    """Who sent a message: the `user_id` the broker checked, or, on a message this process
    published again itself, the origin it carried over. None when nobody vouches for it."""
    if not user_id:
        return None
    if user_id == own_user and origin:
        return origin
    return user_id


def _only(*names: str) -> str:
    return "^(" + "|".join(re.escape(name) for name in names) + ")$"


@dataclass(frozen=True)
class AgentPermissions:
    """What one agent's broker user may do on its virtual host: RabbitMQ's configure, write
    and read patterns, and its topic permissions on the agents' exchange."""

    user: str

    @classmethod
    def of(cls, vm: VirtualMachineId) -> "AgentPermissions":
        return cls(agent_user(vm))

    @property
    def queue(self) -> str:
        return self.user

    @property
    def configure(self) -> str:
        return _only(self.queue, EVENTS_EXCHANGE)

    @property
    def write(self) -> str:
        return _only(self.queue, REPORTS_EXCHANGE, AGENTS_EXCHANGE, EVENTS_EXCHANGE)

    @property
    def read(self) -> str:
        return _only(self.queue, AGENTS_EXCHANGE)

    @property
    def topic_key(self) -> str:
        """The only routing key it may publish or bind with on AGENTS_EXCHANGE."""
        return _only(self.queue)

    def definitions(self, vhost: str) -> tuple[dict, dict]:
        """Its permissions and topic permissions, as RabbitMQ's definitions and HTTP API spell them."""
        return ({"user": self.user, "vhost": vhost, "configure": self.configure, "write": self.write,
                 "read": self.read},
                {"user": self.user, "vhost": vhost, "exchange": AGENTS_EXCHANGE, "write": self.topic_key,
                 "read": self.topic_key})


# What every agent needs to exist before it starts (it may declare none of it): made by
# enrollment and by the control worker, and in infra/rabbitmq/definitions.json.
TOPOLOGY = {
    "exchanges": [{"name": REPORTS_EXCHANGE, "type": "direct"}, {"name": AGENTS_EXCHANGE, "type": "topic"}],
    "bindings": [{"source": REPORTS_EXCHANGE, "destination": CONTROL_QUEUE, "routing_key": CONTROL_QUEUE}],
}
