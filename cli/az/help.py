"""Help and examples of the az-shaped commands (knack's help files, YAML as az writes them)."""

from knack.help_files import helps

HELP: dict[str, str] = {}

HELP["network"] = """
type: group
short-summary: Network Watcher and packet captures, as az network watcher manages them.
"""

HELP["network watcher"] = """
type: group
short-summary: The network watchers, one per region where agents report, and those holding captures.
"""

HELP["network watcher list"] = """
type: command
short-summary: List the network watchers of the subscription.
examples:
  - name: List every network watcher.
    text: packetwatch network watcher list -o table
"""

HELP["network watcher show"] = """
type: command
short-summary: Show one network watcher.
examples:
  - name: Show the watcher of East US.
    text: packetwatch network watcher show -g NetworkWatcherRG -n NetworkWatcher_eastus
"""

HELP["network watcher packet-capture"] = """
type: group
short-summary: Manage packet capture sessions on VMs and scale sets.
"""

HELP["network watcher packet-capture create"] = """
type: command
short-summary: Create and start a packet capture session.
long-summary: The watcher is the one of the VM's region (its agent reports it), or of --location.
examples:
  - name: Capture on a VM into a storage account.
    text: packetwatch network watcher packet-capture create --resource-group myResourceGroup --vm myVM --name myVM_1 --storage-account mystorageaccount
  - name: Capture TCP port 80 on a VM into a file on the VM, for 60 seconds.
    text: >
      packetwatch network watcher packet-capture create -g myResourceGroup --vm myVM -n pc1
      --file-path /var/captures/pc1.cap --time-limit 60 --filters '[{"protocol": "TCP", "localPort": "80"}]'
  - name: Capture on two instances of a scale set.
    text: packetwatch network watcher packet-capture create -g myResourceGroup --target myScaleSet --target-type AzureVMSS --include 0 1 -n pc2 --storage-account mystorageaccount
"""

HELP["network watcher packet-capture show"] = """
type: command
short-summary: Show details of a packet capture session.
examples:
  - name: Show a capture in East US.
    text: packetwatch network watcher packet-capture show --location eastus --name myVM_1
"""

HELP["network watcher packet-capture show-status"] = """
type: command
short-summary: Show the status of a packet capture session.
examples:
  - name: Show the status of a capture.
    text: packetwatch network watcher packet-capture show-status --location eastus --name myVM_1
  - name: Follow a capture with a live line until it ends.
    text: packetwatch network watcher packet-capture show-status -l eastus -n myVM_1 --watch
"""

HELP["network watcher packet-capture list"] = """
type: command
short-summary: List all packet capture sessions within a region.
examples:
  - name: List the captures in East US as a table.
    text: packetwatch network watcher packet-capture list --location eastus -o table
"""

HELP["network watcher packet-capture stop"] = """
type: command
short-summary: Stop a running packet capture session.
examples:
  - name: Stop a capture.
    text: packetwatch network watcher packet-capture stop --location eastus --name myVM_1
"""

HELP["network watcher packet-capture delete"] = """
type: command
short-summary: Delete a packet capture session (its files are kept).
examples:
  - name: Delete a capture.
    text: packetwatch network watcher packet-capture delete --location eastus --name myVM_1
"""

HELP["network watcher packet-capture wait"] = """
type: command
short-summary: Place the CLI in a waiting state until a condition of the packet capture is met.
examples:
  - name: Wait until a capture has stopped.
    text: >
      packetwatch network watcher packet-capture wait -l eastus -n myVM_1 --custom "provisioningState=='Succeeded'"
      --interval 2
  - name: Wait until a capture is deleted.
    text: packetwatch network watcher packet-capture wait -l eastus -n myVM_1 --deleted
"""

HELP["vm"] = """
type: group
short-summary: The VMs' PacketWatch agents.
"""

HELP["vm extension"] = """
type: group
short-summary: The Network Watcher agent of a VM.
"""

HELP["vm extension show"] = """
type: command
short-summary: Show a VM's PacketWatch agent as the NetworkWatcherAgentLinux extension.
examples:
  - name: Show the agent of myVM.
    text: packetwatch vm extension show --resource-group myResourceGroup --vm-name myVM --name NetworkWatcherAgentLinux
"""


HELP["packet-capture"] = """
type: group
short-summary: The short forms of az network watcher packet-capture, the watcher named with -g and --watcher.
long-summary: Each prints objects as the API answers them; -o table has PacketWatch's columns.
"""

SHORT_FORMS = {
    "create": ("Create and start a packet capture session on a VM (a name in -g) or a scale set.",
               "packetwatch packet-capture create -g myResourceGroup --vm myVM -n pc1 --file-path "
               "/var/captures/pc1.cap --time-limit 60"),
    "show": ("Show details of a packet capture session.", "packetwatch packet-capture show -g myResourceGroup -n pc1"),
    "show-status": ("Show the status of a packet capture session.",
                    "packetwatch packet-capture show-status -g myResourceGroup -n pc1 -o table"),
    "list": ("List the packet capture sessions of a network watcher.",
             "packetwatch packet-capture list -g myResourceGroup --watcher PacketWatch -o table"),
    "stop": ("Stop a running packet capture session.", "packetwatch packet-capture stop -g myResourceGroup -n pc1"),
    "delete": ("Delete a packet capture session (its files are kept).",
               "packetwatch packet-capture delete -g myResourceGroup -n pc1"),
    "wait": ("Wait until a condition of the packet capture is met.",
             "packetwatch packet-capture wait -g myResourceGroup -n pc1 --deleted"),
    "download": ("Download a stored capture's file with a progress bar, or say where a file kept on the VM is.",
                 "packetwatch packet-capture download -g myResourceGroup -n pc1 -o pc1.cap"),
}
for _verb, (_summary, _example) in SHORT_FORMS.items():
    HELP[f"packet-capture {_verb}"] = f"""
type: command
short-summary: {_summary}
examples:
  - name: {_summary.split(",")[0].split(" (")[0].rstrip(".")}.
    text: {_example}
"""

HELP["agent"] = """
type: group
short-summary: The capture agents (packetwatch agent run|install|uninstall manage one on its VM).
"""

HELP["agent show"] = """
type: command
short-summary: List the agents that report in (VM, version, last seen, online or offline).
examples:
  - name: The agents as a table.
    text: packetwatch agent show -o table
"""


HELP["queue"] = """
type: group
short-summary: Capture requests over the broker (the intake queue) and the captures' lifecycle events.
"""

HELP["queue submit"] = """
type: command
short-summary: Put a capture request on the intake queue and wait for its answer.
long-summary: >
  The request is validated and recorded as a PUT is. With --token (or PACKETWATCH_TOKEN) it carries
  that token; without, the broker user of the connection (RabbitMQ vouches for it) must be granted
  in the access file's brokerUsers.
examples:
  - name: Capture on a VM for a minute, through the broker.
    text: packetwatch queue submit -g myResourceGroup --vm myVM -n pc1 --file-path /var/captures/pc1.cap --time-limit 60
"""

HELP["queue events"] = """
type: command
short-summary: Print the captures' lifecycle events (CloudEvents, one JSON line each) as they come.
examples:
  - name: Wait until one capture is stored.
    text: packetwatch queue events -g myResourceGroup -n pc1 --type stored --count 1 --timeout 600
"""


def register() -> None:
    """Give knack the commands' help and examples."""
    helps.update(HELP)
