"""`packetwatch agent install` on this machine, as far as systemd goes here (PID 1 is not
systemd in our sandboxes, so the service is not started): the user, the capture root, the
environment file and the unit are made as said, the unit passes `systemd-analyze verify`
and scores no worse in `systemd-analyze security` than the unit in infra/, and uninstall
takes them away again but leaves the captures."""

import pwd
import re
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cli.agent_install import SERVICE, AgentInstall

ROOT = Path(__file__).resolve().parents[2]
ANALYZE = shutil.which("systemd-analyze") or "systemd-analyze"


def _exposure(unit: Path) -> float:
    result = subprocess.run([ANALYZE, "security", "--offline=yes", str(unit)], capture_output=True, text=True,
                            timeout=120, cwd=unit.parent)
    return float(re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout).group(1))


# `systemd-analyze security` of the unit this project shipped before `agent install` (systemd 252).
EXPOSURE_BEFORE = 4.1


def test_the_unit_in_infra_is_the_one_agent_install_writes():
    unit = AgentInstall(interface="", broker_url="", executable=Path("/opt/packetwatch/bin/packetwatch")).unit()
    assert (ROOT / "infra" / "systemd" / SERVICE).read_text() == unit


def test_the_generated_unit_verifies_and_is_more_hardened_than_before(tmp_path):
    setup = AgentInstall(interface="eth0", broker_url="amqps://agent:secret@rabbit:5671//",
                         config_dir=tmp_path / "etc", unit_dir=tmp_path / "units")
    setup.write_files()
    assert setup.executable.exists()
    verify = subprocess.run([ANALYZE, "verify", str(setup.unit_file)], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert _exposure(setup.unit_file) < EXPOSURE_BEFORE
    unit = setup.unit_file.read_text()
    assert "CapabilityBoundingSet=CAP_NET_RAW\n" in unit and "User=packetwatch\n" in unit
    assert "--vm" not in unit, "without --vm the agent asks IMDS at each start"


@pytest.mark.skipif(not shutil.which("useradd"), reason="needs useradd")
def test_install_then_uninstall_leave_the_machine_as_it_was_but_for_the_captures(tmp_path):
    user = f"pwt{secrets.token_hex(3)}"
    paths = ["--user", user, "--config-dir", str(tmp_path / "etc"), "--unit-dir", str(tmp_path / "units")]
    root = tmp_path / "captures"
    vm = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/web01"
    install = [sys.executable, "-m", "cli.main", "agent", "install", "--interface", "lo", "--vm", vm,
               "--capture-root", str(root), "--no-enable", *paths]
    try:
        done = subprocess.run(install, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        owner = pwd.getpwnam(user)
        assert owner.pw_shell == "/usr/sbin/nologin"
        assert (root.stat().st_uid, stat.S_IMODE(root.stat().st_mode)) == (owner.pw_uid, 0o750)
        env_file = tmp_path / "etc" / "agent.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o640 and env_file.stat().st_gid == owner.pw_gid
        assert f"PACKETWATCH_VM_ID={vm}\n" in env_file.read_text()
        assert "--vm ${PACKETWATCH_VM_ID}" in (tmp_path / "units" / SERVICE).read_text()
        (root / "evidence.cap").write_bytes(b"kept")
    finally:
        removed = subprocess.run([sys.executable, "-m", "cli.main", "agent", "uninstall", *paths],
                                 capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert removed.returncode == 0, removed.stderr
    with pytest.raises(KeyError):
        pwd.getpwnam(user)
    assert not (tmp_path / "units" / SERVICE).exists() and not (tmp_path / "etc" / "agent.env").exists()
    assert (root / "evidence.cap").read_bytes() == b"kept"


def test_look_back_options_go_to_the_environment_the_agent_reads_and_bad_ones_are_refused(tmp_path):
    command = [sys.executable, "-m", "cli.main", "agent", "install", "--print", "--interface", "eth0",
               "--broker-url", "amqp://x", "--config-dir", str(tmp_path)]
    printed = subprocess.run([*command, "--look-back-seconds", "120", "--look-back-dir", "/dev/shm/pw",
                              "--look-back-filters", '[{"protocol": "TCP"}]'], capture_output=True, text=True,
                             timeout=60, cwd=ROOT)
    assert printed.returncode == 0, printed.stderr
    environment = dict(line.split("=", 1) for line in printed.stdout.splitlines() if line.startswith("PACKETWATCH_"))
    assert environment["PACKETWATCH_LOOK_BACK_SECONDS"] == "120"
    assert environment["PACKETWATCH_LOOK_BACK_DIR"] == "/dev/shm/pw"
    assert environment["PACKETWATCH_LOOK_BACK_FILTERS"] == '[{"protocol": "TCP"}]'
    refused = subprocess.run([*command, "--look-back-seconds", "60", "--look-back-filters",
                              '[{"protocol": "TCP", "localPort": "80:90"}]'], capture_output=True, text=True,
                             timeout=60, cwd=ROOT)
    assert refused.returncode == 2 and "--look-back-filters[0].localPort" in refused.stderr
    from_environment = subprocess.run([sys.executable, "-m", "cli.main", "agent", "run", "--interface", "lo"],
                                      capture_output=True, text=True, timeout=60, cwd=ROOT,
                                      env={"PACKETWATCH_LOOK_BACK_SECONDS": "abc", "PATH": "/usr/bin:/bin"})
    assert from_environment.returncode == 2
    assert "--look-back-seconds must be a whole number" in from_environment.stderr
