"""An agent started without --vm learns its VM from the Instance Metadata Service."""

import httpx
import pytest

from cli.supervisor import free_port
from shared.broker import agent_queue_name
from shared.errors import InvalidField
from shared.resource_ids import VirtualMachineId
from tests.imds_server import imds
from workers.agent.imds import location_from_imds, vm_from_imds

VM = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/web/providers/Microsoft.Compute/virtualMachines/web01"


def test_the_vm_is_learned_from_imds_as_its_documentation_shows():
    with imds(VM) as url:
        assert httpx.get(f"{url}/metadata/instance/compute/resourceId?api-version=2021-02-01").status_code == 400, \
            "like IMDS, the server refuses a call without the Metadata header"
        assert vm_from_imds(url) == VirtualMachineId.parse(VM)
        assert location_from_imds(url) == "westeurope"


def test_a_scale_set_instance_learns_its_scale_set_and_instance_id_and_gets_its_own_queue():
    instance = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/web/providers/Microsoft.Compute/"
                "virtualMachineScaleSets/webset/virtualMachines/7")
    with imds(instance) as url:
        vm = vm_from_imds(url)
    assert (vm.scale_set, vm.name, vm.computer_name, vm.arm_id) == ("webset", "7", "webset_7", instance)
    other = VirtualMachineId(vm.subscription, vm.resource_group, "8", "webset")
    assert agent_queue_name(vm).startswith("packetwatch.agent.webset_7.") and agent_queue_name(vm) != \
        agent_queue_name(other)


def test_without_imds_the_agent_says_to_give_vm():
    with pytest.raises(InvalidField) as error:
        vm_from_imds(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    assert error.value.field == "--vm" and "Instance Metadata Service" in str(error.value)


def test_an_answer_that_is_not_a_vm_is_refused():
    with imds("/subscriptions/s/resourceGroups/r/providers/Microsoft.Web/sites/app") as url:
        with pytest.raises(InvalidField):
            vm_from_imds(url)
