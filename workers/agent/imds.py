"""Who this VM is, asked of Azure's Instance Metadata Service (IMDS), as its documentation
shows: GET /metadata/instance/compute/resourceId?api-version=2021-02-01&format=text with the
header `Metadata: true`, never through a proxy. On a scale set instance the resource ID is
…/virtualMachineScaleSets/S/virtualMachines/ID: the agent knows its scale set and instance."""

from __future__ import annotations

import httpx

from shared.errors import InvalidField
from shared.resource_ids import VirtualMachineId

IMDS_URL = "http://169.254.169.254"
RESOURCE_ID_PATH = "/metadata/instance/compute/resourceId"
LOCATION_PATH = "/metadata/instance/compute/location"
API_VERSION = "2021-02-01"


def _ask(base_url: str, path: str, flag: str, what: str, timeout: float) -> str:
    url = base_url.rstrip("/") + path
    try:
        answer = httpx.get(url, params={"api-version": API_VERSION, "format": "text"}, headers={"Metadata": "true"},
                           timeout=timeout, trust_env=False)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise InvalidField(flag, None, f"not given, and the Instance Metadata Service at {base_url} did not "
                                       f"answer ({exc}); give the VM's {what} with {flag}") from None
    return answer.text.strip()


def vm_from_imds(base_url: str = IMDS_URL, timeout: float = 2.0) -> VirtualMachineId:
    """This VM's resource ID; InvalidField naming --vm when IMDS cannot tell it."""
    return VirtualMachineId.parse(_ask(base_url, RESOURCE_ID_PATH, "--vm", "resource ID", timeout),
                                  "IMDS compute/resourceId")


def location_from_imds(base_url: str = IMDS_URL, timeout: float = 2.0) -> str:
    """This VM's Azure region (e.g. westeurope); InvalidField naming --location when IMDS cannot tell it."""
    return _ask(base_url, LOCATION_PATH, "--location", "region", timeout).lower()
