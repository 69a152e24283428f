"""The cloud-init example is valid cloud-config, and every PacketWatch command in it is one
the CLI takes, with those flags."""

import subprocess
import sys
from pathlib import Path

import yaml

from cli.main import build_parser
from shared.version import VERSION

ROOT = Path(__file__).resolve().parents[2]
CLOUD_CONFIG = ROOT / "infra" / "cloud-init" / "agent.yaml"
MODULES = {"package_update", "packages", "runcmd", "write_files"}


def test_it_is_cloud_config_with_known_modules_only():
    text = CLOUD_CONFIG.read_text()
    assert text.splitlines()[0] == "#cloud-config"
    config = yaml.safe_load(text)
    assert set(config) <= MODULES
    assert all(isinstance(command, list) and all(isinstance(part, str) for part in command)
               for command in config["runcmd"]), "runcmd entries are argument lists: no shell"


def test_its_packetwatch_commands_exist_in_the_cli_and_pin_this_release():
    runcmd = yaml.safe_load(CLOUD_CONFIG.read_text())["runcmd"]
    [install] = [c for c in runcmd if c[0].endswith("/pip")]
    assert f"packetwatch=={VERSION}" in install
    commands = [c[1:] for c in runcmd if c[0].endswith("/bin/packetwatch")]
    assert commands and commands[0][:2] == ["agent", "install"]
    for arguments in commands:
        parsed = build_parser().parse_args(arguments)
        assert parsed.handler.__name__ == "_agent_install" and parsed.broker_url.startswith("amqps://")
        shown = subprocess.run([sys.executable, "-m", "cli.main", *arguments, "--print"], capture_output=True,
                               text=True, timeout=60, cwd=ROOT)
        assert shown.returncode == 0 and "ExecStart=" in shown.stdout, shown.stderr
