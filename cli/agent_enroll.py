"""Agents' broker identities, issued and withdrawn one VM at a time through RabbitMQ's HTTP
API (the management plugin), by a broker administrator.

`packetwatch agent enroll --vm ID` gives that VM's agent a broker user of its own (named after
its queue, with a random password) whose permissions reach only its own queue and its own
reports (shared/broker_identity.py:AgentPermissions), makes what agents need to exist (the
reports and agents exchanges, the control queue, their binding), and prints the agent's
broker URL, for `agent install --broker-url` or cloud-init. Enrolling again replaces the
password. `packetwatch agent revoke --vm ID` deletes the user and closes its connections,
touching no other VM. RabbitMQ keeps its users in its own database: ten thousand VMs are ten
thousand users, each revocable alone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx
from kombu import Connection

from shared.broker import QUEUE_ARGUMENTS
from shared.broker_identity import TOPOLOGY, AgentPermissions
from shared.errors import InvalidField
from shared.resource_ids import VirtualMachineId

MANAGEMENT_PORT = 15672
TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Enrollment:
    vm: VirtualMachineId
    user: str
    broker_url: str  # the agent's own: its user and password, at the broker's addresses and virtual host


def with_user(broker_url: str, user: str, password: str) -> str:
    """`broker_url` (each of its `;`-separated addresses) logging in as `user`."""
    urls = []
    for url in broker_url.split(";"):
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        urls.append(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}").geturl())
    return ";".join(urls)


class BrokerAdmin:
    def __init__(self, broker_url: str, management_url: str | None = None) -> None:
        info = Connection(broker_url).info()
        self.broker_url = broker_url
        self.vhost = str(info["virtual_host"])
        url = urlsplit(management_url or f"http://{info['hostname']}:{MANAGEMENT_PORT}")
        auth = (url.username or str(info["userid"]), url.password or str(info["password"] or ""))
        base = url._replace(netloc=url.netloc.rsplit("@", 1)[-1]).geturl().rstrip("/")
        self.client = httpx.Client(base_url=f"{base}/api", auth=auth, timeout=TIMEOUT_SECONDS)

    def __enter__(self) -> "BrokerAdmin":
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _call(self, method: str, path: str, body: dict | None = None, missing_ok: bool = False) -> bool:
        """False when `missing_ok` and the broker has no such thing; InvalidField for any refusal."""
        try:
            response = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise InvalidField("--management-url", str(self.client.base_url),
                               f"cannot reach RabbitMQ's HTTP API (is the management plugin enabled?): {exc}") from None
        if missing_ok and response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise InvalidField("--management-url", str(self.client.base_url),
                               f"RabbitMQ's HTTP API refused {method} {path}: HTTP {response.status_code} "
                               f"{response.text[:300]}")
        return True

    def _v(self) -> str:
        return quote(self.vhost, safe="")

    def declare_topology(self) -> None:
        """What agents need to exist, which they may not make themselves (idempotent)."""
        for exchange in TOPOLOGY["exchanges"]:
            self._call("PUT", f"/exchanges/{self._v()}/{quote(exchange['name'], safe='')}",
                       {"type": exchange["type"], "durable": True})
        for binding in TOPOLOGY["bindings"]:
            self._call("PUT", f"/queues/{self._v()}/{quote(binding['destination'], safe='')}",
                       {"durable": True, "arguments": QUEUE_ARGUMENTS})
            self._call("POST", f"/bindings/{self._v()}/e/{quote(binding['source'], safe='')}"
                               f"/q/{quote(binding['destination'], safe='')}", {"routing_key": binding["routing_key"]})

    def enroll(self, vm: VirtualMachineId) -> Enrollment:
        self.declare_topology()
        permissions, topic = AgentPermissions.of(vm).definitions(self.vhost)
        user, password = permissions["user"], secrets.token_urlsafe(32)
        self._call("PUT", f"/users/{quote(user, safe='')}", {"password": password, "tags": ""})
        self._call("PUT", f"/permissions/{self._v()}/{quote(user, safe='')}",
                   {key: permissions[key] for key in ("configure", "write", "read")})
        self._call("PUT", f"/topic-permissions/{self._v()}/{quote(user, safe='')}",
                   {key: topic[key] for key in ("exchange", "write", "read")})
        return Enrollment(vm, user, with_user(self.broker_url, user, password))

    def revoke(self, vm: VirtualMachineId) -> bool:
        """Delete the VM's agent user and close its connections; False when it had none."""
        user = quote(AgentPermissions.of(vm).user, safe="")
        existed = self._call("DELETE", f"/users/{user}", missing_ok=True)
        self._call("DELETE", f"/connections/username/{user}", missing_ok=True)
        return existed
