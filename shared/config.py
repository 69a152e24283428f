"""Configuration from the environment (PACKETWATCH_*), with defaults that run on one machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
# Settings that only the control side (API, control worker) ever gets: an agent, on its VM,
# has neither the registry, nor storage account keys, nor API tokens, nor function keys.
CONTROL_SIDE_ONLY = ("PACKETWATCH_DATABASE_URL", "PACKETWATCH_BROKER_MANAGEMENT_URL", "PACKETWATCH_STORAGE_CONFIG", "PACKETWATCH_ACCESS_CONFIG",
                     "PACKETWATCH_ALERT_CONFIG", "PACKETWATCH_FUNCTION_KEYS")


def state_dir() -> Path:
    """Where PacketWatch keeps its state on this machine, whatever the current directory:
    PACKETWATCH_STATE_DIR, else $XDG_STATE_HOME/packetwatch (~/.local/state/packetwatch)."""
    if os.environ.get("PACKETWATCH_STATE_DIR"):
        return Path(os.environ["PACKETWATCH_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "packetwatch"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACKETWATCH_")

    broker_url: str = DEFAULT_BROKER_URL
    # RabbitMQ's HTTP API (the management plugin), where `agent enroll` and `agent revoke` issue
    # and withdraw agents' broker users; default: the broker's host, port 15672, the broker
    # URL's user (who must be a broker administrator).
    broker_management_url: str | None = None
    database_url: str = Field(default_factory=lambda: f"sqlite:///{state_dir() / 'registry.db'}")
    capture_root: str = "/var/captures"
    heartbeat_seconds: float = 10.0
    # A capture no agent has started this long after it was created ends in
    # Error/AgentStopped, and its queued request can no longer start it.
    start_deadline_seconds: float = 300.0
    # Refuse at once (400 AgentNotFound) a capture for a VM no agent has ever reported for.
    require_known_agent: bool = False
    access_config: str | None = None
    alert_config: str | None = None
    storage_config: str | None = None
    upload_retry_seconds: float = 900.0
    # `packetwatch serve` takes capture submissions off the broker too (functions/queue_intake.py).
    queue_intake: bool = True
    notify_config: str | None = None
    function_keys: str = ""
    # Azure's Instance Metadata Service, where an agent started without --vm learns its VM.
    imds_url: str = "http://169.254.169.254"
    # text (for people) or json (one object per line, for a log pipeline).
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Where agents, the control worker and the notifier serve /metrics, /healthz and /readyz
    # (each on its own --metrics-port); 0.0.0.0 when Prometheus scrapes from elsewhere.
    metrics_host: str = "127.0.0.1"

    @property
    def function_key_list(self) -> list[str]:
        return [key.strip() for key in self.function_keys.split(",") if key.strip()]
