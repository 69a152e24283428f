"""A small client of PacketWatch's ARM routes, for the demo and the end-to-end tests."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from shared.resource_ids import CaptureId

API_VERSION = "2026-01-01"


@dataclass
class ArmClient:
    base_url: str
    api_version: str = API_VERSION

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}?api-version={self.api_version}"

    def create(self, capture: CaptureId, properties: dict) -> httpx.Response:
        return httpx.put(self._url(capture.arm_id), json={"properties": properties}, timeout=10)

    def get(self, capture: CaptureId) -> httpx.Response:
        return httpx.get(self._url(capture.arm_id), timeout=10)

    def list(self, capture: CaptureId) -> httpx.Response:
        return httpx.get(self._url(capture.watcher_path + "/packetCaptures"), timeout=10)

    def stop(self, capture: CaptureId) -> httpx.Response:
        return httpx.post(self._url(capture.arm_id + "/stop"), timeout=10)

    def status(self, capture: CaptureId) -> dict:
        response = httpx.post(self._url(capture.arm_id + "/queryStatus"), timeout=10)
        response.raise_for_status()
        return response.json()

    def delete(self, capture: CaptureId) -> httpx.Response:
        return httpx.delete(self._url(capture.arm_id), timeout=10)

    def wait_for(self, capture: CaptureId, *statuses: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            status = self.status(capture)
            if status.get("packetCaptureStatus") in statuses:
                return status
            time.sleep(0.1)
        raise TimeoutError(f"{capture.name} did not reach {statuses} in {timeout}s; last status {status}")
